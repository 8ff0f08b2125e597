"""The local backend: run a Plan on this machine with the supervisor."""

from __future__ import annotations

from collections.abc import Callable

from vft.backends.local.backend import LocalBackend
from vft.core.hooks import hookimpl


@hookimpl
def vft_register_backends(register: Callable[[type], None]) -> None:
    register(LocalBackend)
