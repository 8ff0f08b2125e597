"""The plugin module vft loads through the `vft` entry point: hooks only, nothing heavy."""

from __future__ import annotations

from collections.abc import Callable

from vft.plugin import Backend, hookimpl
from vft_example.backend import ExampleBackend


@hookimpl
def vft_register_backends(register: Callable[[type[Backend]], None]) -> None:
    register(ExampleBackend)
