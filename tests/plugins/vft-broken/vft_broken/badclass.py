"""Registers a class that is not a Backend, and a Backend whose name is not usable."""

from vft.plugin import Backend, hookimpl


class NotABackend:
    name = "not-a-backend"


class BadName(Backend):
    name = "Bad Name"


@hookimpl
def vft_register_backends(register):
    register(NotABackend)
    register(BadName)
