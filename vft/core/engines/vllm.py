"""The built-in vLLM engine: `vllm serve` with the weight-transfer routes TRL's client uses.

A plugin of `vft.core.engines.base.InferenceServer`, registered through the same hook an
external engine uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from vft.core.engines.base import InferenceServer, ServerPart
from vft.core.hooks import hookimpl


class VllmServer(InferenceServer):
    """`vllm serve` with the weight-transfer routes TRL's server-mode client uses."""

    name = "vllm"
    default_env = {
        "VLLM_SERVER_DEV_MODE": "1",
        "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
        "PYTHONUNBUFFERED": "1",
    }

    def command(self, part: ServerPart) -> list[str]:
        opts = part.options
        argv = ["vllm", "serve", part.model, "--host", "0.0.0.0", "--port", str(part.port)]
        argv += ["--tensor-parallel-size", str(part.tensor_parallel)]
        argv += ["--data-parallel-size", str(part.data_parallel)]
        if part.multi_node:
            argv += [
                "--data-parallel-size-local",
                str(part.local_data_parallel),
                "--data-parallel-start-rank",
                str(part.start_rank),
                "--data-parallel-address",
                part.head_address,
                "--data-parallel-rpc-port",
                str(part.rpc_port),
            ]
            if part.headless:
                argv.append("--headless")
        argv += ["--gpu-memory-utilization", f"{opts.gpu_memory_utilization:g}"]
        if opts.enforce_eager:
            argv.append("--enforce-eager")
        if opts.max_model_len:
            argv += ["--max-model-len", str(opts.max_model_len)]
        argv += ["--weight-transfer-config", json.dumps({"backend": "nccl"}, separators=(",", ":"))]
        return argv + list(opts.extra_args)


@hookimpl
def vft_register_inference_servers(register: Callable[[type[InferenceServer]], None]) -> None:
    register(VllmServer)
