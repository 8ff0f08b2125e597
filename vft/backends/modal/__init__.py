"""The Modal backend: the same Plan on Modal's GPUs. `modal` is imported only when used."""

from __future__ import annotations

from collections.abc import Callable

from vft.backends.modal.backend import ModalBackend
from vft.core.hooks import hookimpl


@hookimpl
def vft_register_backends(register: Callable[[type], None]) -> None:
    register(ModalBackend)
