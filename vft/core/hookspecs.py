"""Every extension point of vft, in one place. Each hook receives a `register` callback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("vft")
hookimpl = pluggy.HookimplMarker("vft")


@hookspec
def vft_register_backends(register: Callable[[type[Any]], None]) -> None:
    """Register `Backend` subclasses: `register(MyBackend)`; keyed on `MyBackend.name`."""


@hookspec
def vft_register_inference_servers(register: Callable[[type[Any]], None]) -> None:
    """Register `InferenceServer` subclasses: `register(MyServer)`; keyed on `MyServer.name`."""
