"""The inference-server engine type: how a plan starts one (argv, env) and checks readiness.

vLLM (vft/core/engines/vllm.py) is built in; other engines (SGLang, the CPU test server)
are plugins that register an `InferenceServer` subclass through
`vft_register_inference_servers`, exactly as the built-in one does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from vft.core.recipe.schema import Inference


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
    device: str = "cuda"  # "cpu": the server runs on the CPU
    weight_sync: str | None = None  # "nccl" | "files": how the trainer pushes new weights
    served_model_name: str | None = None  # the name clients ask for, when `model` is a path

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
    #: whether it can also serve on a CPU (a CPU plan with inference.colocate = false)
    cpu: ClassVar[bool] = False
    #: environment of its processes on a CPU plan, on top of `default_env`
    cpu_env: ClassVar[dict[str, str]] = {}
    #: weight-sync transports it supports
    weight_syncs: ClassVar[frozenset[str]] = frozenset({"nccl"})

    def command(self, part: ServerPart) -> list[str]:
        """The argv (never a shell string) that serves `part` on this node.

        It must bind `part.port` on all interfaces and answer `health_path` with 200 once
        it can serve; strings may hold the plan's placeholders (`{{node_addr:N}}`, ...).
        """
        raise NotImplementedError
