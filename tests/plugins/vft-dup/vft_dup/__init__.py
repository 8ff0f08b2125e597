"""Registers a second backend called `example`: vft must refuse to guess which one is meant."""

from __future__ import annotations

from collections.abc import Callable

from vft.plugin import Backend, Capabilities, hookimpl


class OtherExampleBackend(Backend):
    """Another package's idea of `example`."""

    name = "example"
    capabilities = Capabilities(multi_node=True)


class DupOnlyBackend(Backend):
    """A name no one else uses: still available while `example` is in conflict."""

    name = "dup-only"
    capabilities = Capabilities()


@hookimpl
def vft_register_backends(register: Callable[[type[Backend]], None]) -> None:
    register(OtherExampleBackend)
    register(DupOnlyBackend)
