"""Inference servers: how a plan starts one (argv, env) and how readiness is checked.

vLLM is built in; other engines (SGLang, the CPU test server) are plugins that register an
`InferenceServer` subclass through `vft_register_inference_servers`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from vft.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from vft.core.recipe import Inference


@dataclass(frozen=True)
class ServerPart:
    """The slice of the inference service that runs on one node."""

    model: str
    port: int
    data_parallel: int  # replicas across all nodes
    tensor_parallel: int
    local_data_parallel: int  # replicas on this node
    start_rank: int  # first data-parallel rank on this node
    head_address: str  # address of the node running the API server (may be a placeholder)
    rpc_port: int
    headless: bool  # a non-head node of a multi-node server: engines only, no API
    options: Inference

    @property
    def multi_node(self) -> bool:
        return self.local_data_parallel != self.data_parallel


class InferenceServer:
    """An engine that serves the policy model over HTTP for the trainer's generations."""

    name: ClassVar[str]
    health_path: ClassVar[str] = "/health"
    #: environment every process of this engine gets (policy as data)
    default_env: ClassVar[dict[str, str]] = {}
    #: whether the engine needs GPUs (the planner refuses GPU-less plans for it otherwise)
    needs_gpu: ClassVar[bool] = True

    def command(self, part: ServerPart) -> list[str]:
        """The argv (never a shell string) that serves `part` on this node.

        It must bind `part.port` on all interfaces and answer `health_path` with 200 once
        it can serve; strings may hold the plan's placeholders (`{{node_addr:N}}`, ...).
        """
        raise NotImplementedError


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
