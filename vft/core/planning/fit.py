"""Does the model fit? The memory side of planning: the split that fits, offload, refusal.

Pure, like the planner: numbers in (recipe, layout, GPU memory), decisions and warnings out.
A colocated plan (vLLM inside the trainer processes) adds vLLM's share of each GPU to the
trainer's: `gpu_memory_utilization` of the whole GPU, 0.3 unless the recipe sets it (TRL's
own colocate default; vLLM would take 90% of the GPU at the server default of 0.9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vft.core.errors import PlanError
from vft.core.planning.estimate import (
    HEADROOM,
    TrainerMemory,
    inference_memory_gib,
    trainer_memory_gib,
)
from vft.core.planning.layout import (
    Layout,
    assign,
    colocated,
    default_inference_gpus,
    splits,
)
from vft.core.recipe.schema import Recipe

COLOCATE_UTILIZATION = 0.3  # vLLM's share of a GPU it shares with the trainer, unless set
MIN_KV_GIB = 1.0  # the least KV cache a colocated vLLM is planned with


@dataclass(frozen=True)
class FitInputs:
    """What every memory decision reads: the recipe, the ZeRO stage, the model's size (None
    when it cannot be told) and the memory of one GPU (0 for a CPU plan)."""

    recipe: Recipe
    stage: int | None
    params_b: float | None
    gpu_gib: float


def colocates(recipe: Recipe) -> bool:
    """Whether generation runs in the trainer processes: `inference.colocate`, or when
    unset, a plan of one GPU in all (no GPU is left for a server) that pins no split."""
    res, inf = recipe.resources, recipe.inference
    want = inf.colocate
    if want is None:
        return (
            res.request.count * res.nodes == 1
            and res.inference_gpus is None
            and inf.engine == "vllm"
        )
    if want and inf.engine != "vllm":
        raise PlanError(
            f"inference.colocate: true runs vLLM inside the trainer, but inference.engine is "
            f"{inf.engine!r}; use engine = 'vllm' or remove colocate"
        )
    if want and res.inference_gpus is not None:
        raise PlanError(
            f"resources.inference_gpus: {res.inference_gpus} asks for a vLLM server, but "
            "inference.colocate = true generates inside the trainer; remove one of the two"
        )
    return want


def vllm_utilization(recipe: Recipe, layout: Layout | None) -> float:
    """The fraction of each GPU vLLM may take: the recipe's, or the colocate default."""
    inf = recipe.inference
    if (
        layout is not None
        and layout.colocated
        and "gpu_memory_utilization" not in inf.model_fields_set
    ):
        return COLOCATE_UTILIZATION
    return inf.gpu_memory_utilization


def choose_layout(fit: FitInputs, warnings: list[str]) -> tuple[Layout, bool]:
    """The split; when unpinned and the trainer would not fit, move GPUs to it, then offload."""
    recipe, stage, params_b, gpu_gib = fit.recipe, fit.stage, fit.params_b, fit.gpu_gib
    res = recipe.resources
    per_node, nodes, tp = res.request.count, res.nodes, res.tensor_parallel
    pinned = res.inference_gpus is not None
    first = 0
    if colocates(recipe):
        layout = colocated(per_node, nodes, tp)
    else:
        first = (
            res.inference_gpus
            if res.inference_gpus is not None
            else default_inference_gpus(per_node, nodes, tp)
        )
        layout = assign(per_node, nodes, first, tp)
    if params_b is None or not gpu_gib:
        return layout, False
    if trainer_fits(fit, layout, offload=False):
        return layout, False
    if not pinned and not layout.colocated and stage is not None:
        # the trainer's need falls as it gets GPUs: the first split that fits, from the
        # default towards fewer inference GPUs, told by counts before any layout is built
        total = per_node * nodes
        for inference in range(first - tp, tp - 1, -tp):
            if not _fits(fit, total - inference, offload=False):
                continue
            if not splits(per_node, nodes, inference, tp):
                continue
            wider = assign(per_node, nodes, inference, tp)
            if trainer_fits(fit, wider, offload=False):
                warnings.append(
                    f"moved {wider.trainer_gpus - layout.trainer_gpus} GPU(s) from inference to the "
                    f"trainer so that {params_b:g}B parameters fit ({wider.inference_gpus} inference "
                    f"+ {wider.trainer_gpus} trainer); pin resources.inference_gpus to override"
                )
                return wider, False
    if stage == 3 and trainer_fits(fit, layout, offload=True):
        warnings.append(
            "turned on ZeRO-3 optimizer offload to CPU so the trainer fits "
            "(slower steps; more GPUs or a larger GPU type avoid it)"
        )
        return layout, True
    return layout, False


def trainer_memory(fit: FitInputs, layout: Layout | None, offload: bool) -> TrainerMemory:
    return _trainer_memory(fit, layout.trainer_gpus if layout else 1, offload)


def _trainer_memory(fit: FitInputs, trainer_gpus: int, offload: bool) -> TrainerMemory:
    t = fit.recipe.trainer
    assert fit.params_b is not None
    return trainer_memory_gib(
        fit.params_b,
        trainer_gpus,
        fit.stage,
        offload_optimizer=offload,
        micro_batch=t.per_device_train_batch_size,
        seq_len=t.max_tokens + (t.max_prompt_length or 512),
        reference_model=t.beta > 0,
    )


def trainer_fits(fit: FitInputs, layout: Layout, *, offload: bool) -> bool:
    need = trainer_memory(fit, layout, offload).total
    return need + colocated_vllm_gib(fit.recipe, layout, fit.gpu_gib) <= fit.gpu_gib * HEADROOM


def _fits(fit: FitInputs, trainer_gpus: int, *, offload: bool) -> bool:
    """`trainer_fits` for a server plan of `trainer_gpus` trainer GPUs, without a layout."""
    return _trainer_memory(fit, trainer_gpus, offload).total <= fit.gpu_gib * HEADROOM


def colocated_vllm_gib(recipe: Recipe, layout: Layout | None, gpu_gib: float) -> float:
    """What vLLM takes of each trainer GPU: nothing for a server plan."""
    if layout is None or not layout.colocated:
        return 0.0
    return vllm_utilization(recipe, layout) * gpu_gib


def memory_summary(
    fit: FitInputs, layout: Layout | None, offload: bool, warnings: list[str]
) -> dict[str, Any]:
    """The plan's `memory` section; raises PlanError when the trainer or server cannot fit."""
    recipe, stage, params_b, gpu_gib = fit.recipe, fit.stage, fit.params_b, fit.gpu_gib
    if layout is None:
        return {"fits": True, "params_b": params_b, "note": "CPU run: no GPU memory used"}
    if params_b is None:
        warnings.append(
            f"cannot tell the size of {recipe.model.name!r}: set model.params_b for a memory check"
        )
        return {"fits": None, "params_b": None, "gpu_gib": gpu_gib}
    tm = trainer_memory(fit, layout, offload)
    util = vllm_utilization(recipe, layout)
    weights, kv = inference_memory_gib(params_b, layout.tensor_parallel, gpu_gib, util)
    if layout.colocated:
        return _colocated_summary(fit, layout, tm, util, weights, kv, offload)
    trainer_ok = tm.total <= gpu_gib * HEADROOM
    inference_ok = kv > 0
    if not trainer_ok:
        raise PlanError(
            f"model.name: {recipe.model.name} ({params_b:g}B) needs about {tm.total:.0f} GiB per "
            f"trainer GPU with ZeRO-{stage or 0} on {layout.trainer_gpus} GPU(s), more than the "
            f"{gpu_gib:g} GiB of a {_gpu_name(recipe)}; use more GPUs, a larger "
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
        "trainer_breakdown_gib": _breakdown(tm),
        "inference_weights_gib_per_gpu": round(weights, 1),
        "inference_kv_cache_gib_per_gpu": round(kv, 1),
    }


def _colocated_summary(
    fit: FitInputs,
    layout: Layout,
    tm: TrainerMemory,
    util: float,
    weights: float,
    kv: float,
    offload: bool,
) -> dict[str, Any]:
    """One process per GPU holds both: the trainer's share plus vLLM's `util` of the GPU.

    `trainer_gib_per_gpu` is the whole process (what a free-memory check must find);
    `colocated_vllm_gib_per_gpu` is vLLM's part of it. A refusal names the range of
    gpu_memory_utilization that would fit when there is one.
    """
    recipe, stage, params_b, gpu_gib = fit.recipe, fit.stage, fit.params_b, fit.gpu_gib
    assert params_b is not None
    vllm = util * gpu_gib
    total = tm.total + vllm
    name = _gpu_name(recipe)
    usable = gpu_gib * HEADROOM
    # vLLM needs its weights, ~1 GiB of activations and some KV cache (1 GiB at least)
    low = math.ceil((weights + 1.0 + MIN_KV_GIB) / gpu_gib * 100) / 100
    # the least the trainer can take: with ZeRO-3, the optimizer offloaded to the CPU
    least = tm if offload or stage != 3 else trainer_memory(fit, layout, True)
    high = math.floor((usable - least.total) / gpu_gib * 100) / 100
    if low > high:
        raise PlanError(
            f"model.name: {recipe.model.name} ({params_b:g}B) does not fit with vLLM colocated: "
            f"the trainer needs ~{least.total:.0f} GiB per GPU with ZeRO-{stage or 0}"
            f"{' and optimizer offload' if stage == 3 else ''} on "
            f"{layout.trainer_gpus} GPU(s) and vLLM at least ~{weights + 1 + MIN_KV_GIB:.0f} GiB, "
            f"more than the {gpu_gib:g} GiB of a {name}; use more GPUs with zero3, a larger GPU "
            "type or a smaller per_device_train_batch_size"
        )
    if kv < MIN_KV_GIB or total > usable:
        why = (
            f"leaves no room for a KV cache after {weights:.1f} GiB of weights per GPU"
            if kv < MIN_KV_GIB
            else f"leaves the trainer {usable - vllm:.0f} GiB, it needs ~{least.total:.0f} GiB"
        )
        raise PlanError(
            f"inference.gpu_memory_utilization: {util:g} of a {gpu_gib:g} GiB {name} for the "
            f"colocated vLLM ({vllm:.1f} GiB) {why}; choose between {low:g} and {high:g}"
        )
    return {
        "fits": True,
        "params_b": params_b,
        "gpu_gib": gpu_gib,
        "trainer_gib_per_gpu": round(total, 1),
        "trainer_breakdown_gib": {**_breakdown(tm), "vllm": round(vllm, 1)},
        "colocated_vllm_gib_per_gpu": round(vllm, 1),
        "vllm_gpu_memory_utilization": util,
        "inference_weights_gib_per_gpu": round(weights, 1),
        "inference_kv_cache_gib_per_gpu": round(kv, 1),
    }


def _gpu_name(recipe: Recipe) -> str:
    gpu = recipe.resources.request.type
    return gpu.name if gpu else "CPU"


def _breakdown(tm: TrainerMemory) -> dict[str, float]:
    return {
        "weights": round(tm.weights, 1),
        "grads": round(tm.grads, 1),
        "optimizer": round(tm.optimizer, 1),
        "activations": round(tm.activations, 1),
        "overhead": round(tm.overhead, 1),
    }
