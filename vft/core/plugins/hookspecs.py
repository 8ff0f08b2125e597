"""Every extension point of vft, in one place; docs/plugins.md documents each one.

A plugin is a module (found through the `vft` entry-point group) that defines functions
with these names, marked with `hookimpl`. Each hook receives a `register` callback so one
plugin can add several classes and the core checks each (name, type, duplicates) in one
place: `vft.core.plugins.registry.registry`.

Decided not to be hooks (reasons in docs/plugins.md, "What is not a plugin"):
- environment loaders: Verifiers environments are already pip-installable packages found
  by id; a second discovery mechanism would compete with theirs.
- trainer entries: `trainer.script` (with `trainer.args`) already runs any script under
  the same accelerate/DeepSpeed launch, with the same plan and supervisor.
- GPU catalogs: the planner is pure and offline; a price API would make `vft plan`
  depend on the network. A backend narrows the catalog with `Capabilities.gpu_types`,
  and prices are data in configs/gpus.toml.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vft.core.hooks import hookimpl, hookspec

if TYPE_CHECKING:
    from vft.core.engines.base import InferenceServer
    from vft.core.plugins.backend import Backend


@hookspec
def vft_register_backends(register: Callable[[type[Backend]], None]) -> None:
    """Register `Backend` subclasses: `register(MyBackend)`, keyed on `MyBackend.name`."""


@hookspec
def vft_register_inference_servers(register: Callable[[type[InferenceServer]], None]) -> None:
    """Register `InferenceServer` subclasses: `register(MyServer)`, keyed on `MyServer.name`."""


__all__ = ["hookimpl", "hookspec", "vft_register_backends", "vft_register_inference_servers"]
