"""The `testserver` inference engine: a stand-in for vLLM that needs no GPU.

It lets the supervisor's tests and a cluster test run a real server process on the CPU:
the port is bound at once, /health answers 503 until `--delay` seconds have passed
(like vLLM loading a model), then 200; /v1/models lists the model. Options go in the
recipe's `inference.extra_args`, e.g. `["--delay", "2"]`; see `python -m vft_testserver -h`.
"""

from __future__ import annotations

from collections.abc import Callable

from vft.plugin import InferenceServer, ServerPart, hookimpl

__version__ = "0.1.0"


class TestServer(InferenceServer):
    """A small stdlib HTTP server with vLLM's readiness behaviour; no model, no GPU."""

    __test__ = False  # not a pytest test class, despite its name
    name = "testserver"
    needs_gpu = False
    health_path = "/health"
    default_env = {"PYTHONUNBUFFERED": "1"}
    # it holds no weights; the transports are declared so that plans with it are valid
    weight_syncs = frozenset({"nccl", "files"})

    def command(self, part: ServerPart) -> list[str]:
        argv = ["python", "-m", "vft_testserver", "--host", "0.0.0.0", "--port", str(part.port)]
        argv += ["--model", part.model]
        if part.headless:  # a non-head node of a multi-node server: no HTTP API, like vLLM's
            argv += ["--headless", "--head-address", part.head_address]
        return [*argv, *part.options.extra_args]


@hookimpl
def vft_register_inference_servers(register: Callable[[type[InferenceServer]], None]) -> None:
    register(TestServer)
