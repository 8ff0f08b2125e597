"""A hook that raises while registering (a lazy import inside it failed, say)."""

from vft.plugin import hookimpl


@hookimpl
def vft_register_inference_servers(register):
    raise RuntimeError("vft-broken's server hook failed on purpose")
