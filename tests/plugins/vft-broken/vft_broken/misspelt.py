"""A hook whose name is not a vft hook (singular `backend`): it would silently do nothing."""

from vft.plugin import hookimpl


@hookimpl
def vft_register_backend(register):
    raise AssertionError("never called")
