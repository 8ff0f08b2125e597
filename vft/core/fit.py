"""Does the model fit? The memory side of planning: the split that fits, offload, refusal.

Pure, like the planner: numbers in (recipe, layout, GPU memory), decisions and warnings out.
"""

from __future__ import annotations

from typing import Any

from vft.core.errors import PlanError
from vft.core.estimate import HEADROOM, TrainerMemory, inference_memory_gib, trainer_memory_gib
from vft.core.layout import Layout, assign, default_inference_gpus
from vft.core.recipe import Recipe


def choose_layout(
    recipe: Recipe, stage: int | None, params_b: float | None, gpu_gib: float, warnings: list[str]
) -> tuple[Layout, bool]:
    """The split; when unpinned and the trainer would not fit, move GPUs to it, then offload."""
    res = recipe.resources
    per_node, nodes, tp = res.request.count, res.nodes, res.tensor_parallel
    pinned = res.inference_gpus is not None
    first = res.inference_gpus if pinned else default_inference_gpus(per_node, nodes, tp)
    layout = assign(per_node, nodes, first, tp)
    if params_b is None or not gpu_gib:
        return layout, False
    if trainer_fits(recipe, layout, stage, params_b, gpu_gib, offload=False):
        return layout, False
    if not pinned and stage is not None:
        for inference in range(first - tp, tp - 1, -tp):
            try:
                wider = assign(per_node, nodes, inference, tp)
            except PlanError:
                continue
            if trainer_fits(recipe, wider, stage, params_b, gpu_gib, offload=False):
                warnings.append(
                    f"moved {wider.trainer_gpus - layout.trainer_gpus} GPU(s) from inference to the "
                    f"trainer so that {params_b:g}B parameters fit ({wider.inference_gpus} inference "
                    f"+ {wider.trainer_gpus} trainer); pin resources.inference_gpus to override"
                )
                return wider, False
    if stage == 3 and trainer_fits(recipe, layout, stage, params_b, gpu_gib, offload=True):
        warnings.append(
            "turned on ZeRO-3 optimizer offload to CPU so the trainer fits "
            "(slower steps; more GPUs or a larger GPU type avoid it)"
        )
        return layout, True
    return layout, False


def trainer_memory(
    recipe: Recipe, layout: Layout | None, stage: int | None, params_b: float, offload: bool
) -> TrainerMemory:
    t = recipe.trainer
    return trainer_memory_gib(
        params_b,
        layout.trainer_gpus if layout else 1,
        stage,
        offload_optimizer=offload,
        micro_batch=t.per_device_train_batch_size,
        seq_len=t.max_tokens + (t.max_prompt_length or 512),
        reference_model=t.beta > 0,
    )


def trainer_fits(
    recipe: Recipe,
    layout: Layout,
    stage: int | None,
    params_b: float,
    gpu_gib: float,
    *,
    offload: bool,
) -> bool:
    return trainer_memory(recipe, layout, stage, params_b, offload).total <= gpu_gib * HEADROOM


def memory_summary(recipe, layout, stage, params_b, gpu_gib, offload, warnings) -> dict[str, Any]:
    if layout is None:
        return {"fits": True, "params_b": params_b, "note": "CPU run: no GPU memory used"}
    if params_b is None:
        warnings.append(
            f"cannot tell the size of {recipe.model.name!r}: set model.params_b for a memory check"
        )
        return {"fits": None, "params_b": None, "gpu_gib": gpu_gib}
    tm = trainer_memory(recipe, layout, stage, params_b, offload)
    weights, kv = inference_memory_gib(
        params_b, layout.tensor_parallel, gpu_gib, recipe.inference.gpu_memory_utilization
    )
    trainer_ok = tm.total <= gpu_gib * HEADROOM
    inference_ok = kv > 0
    if not trainer_ok:
        raise PlanError(
            f"model.name: {recipe.model.name} ({params_b:g}B) needs about {tm.total:.0f} GiB per "
            f"trainer GPU with ZeRO-{stage or 0} on {layout.trainer_gpus} GPU(s), more than the "
            f"{gpu_gib:g} GiB of a {recipe.resources.request.type.name}; use more GPUs, a larger "
            "GPU type, zero3, or a smaller per_device_train_batch_size"
        )
    if not inference_ok:
        raise PlanError(
            f"resources.tensor_parallel: {params_b:g}B weights ({weights:.0f} GiB per GPU) leave no "
            f"KV cache on a {gpu_gib:g} GiB GPU at gpu_memory_utilization "
            f"{recipe.inference.gpu_memory_utilization:g}; raise tensor_parallel"
        )
    return {
        "fits": True,
        "params_b": params_b,
        "gpu_gib": gpu_gib,
        "trainer_gib_per_gpu": round(tm.total, 1),
        "trainer_breakdown_gib": {
            "weights": round(tm.weights, 1),
            "grads": round(tm.grads, 1),
            "optimizer": round(tm.optimizer, 1),
            "activations": round(tm.activations, 1),
            "overhead": round(tm.overhead, 1),
        },
        "inference_weights_gib_per_gpu": round(weights, 1),
        "inference_kv_cache_gib_per_gpu": round(kv, 1),
    }
