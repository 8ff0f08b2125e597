"""Memory per GPU and cost: rough, explained estimates that catch the obvious misfits.

Trainer bytes per parameter with bf16 weights and fp32 Adam: weights 2, grads 2, optimizer
12 (master copy + two moments). ZeRO shards them over the trainer processes:
stage 3 all of it, stage 2 grads and optimizer, stage 1 the optimizer only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from vft.core.plan import Cost

GIB = 1024**3
OVERHEAD_GIB = 2.0  # CUDA context, NCCL buffers, allocator slack
HEADROOM = 0.95  # fraction of a GPU's memory a plan may count on
_SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*([BbMm])(?![a-zA-Z])")


def infer_params_b(model: str) -> float | None:
    """Billions of parameters from a name like `Qwen3-1.7B-Wordle` or `SmolLM-135M`."""
    tail = model.rstrip("/").split("/")[-1]
    hits = _SIZE.findall(tail)
    if not hits:
        return None
    number, unit = hits[-1]
    return float(number) / (1000 if unit in "Mm" else 1)


@dataclass(frozen=True)
class TrainerMemory:
    weights: float
    grads: float
    optimizer: float
    activations: float
    overhead: float = OVERHEAD_GIB

    @property
    def total(self) -> float:
        return self.weights + self.grads + self.optimizer + self.activations + self.overhead


def trainer_memory_gib(
    params_b: float,
    processes: int,
    zero_stage: int | None,
    *,
    offload_optimizer: bool,
    micro_batch: int,
    seq_len: int,
    reference_model: bool,
) -> TrainerMemory:
    """Per-GPU memory of one trainer process."""
    p = params_b * 1e9
    n = max(1, processes)
    stage = zero_stage or 0
    weights = 2 * p / (n if stage >= 3 else 1)
    grads = 2 * p / (n if stage >= 2 else 1)
    optimizer = 0.0 if offload_optimizer else 12 * p / (n if stage >= 1 else 1)
    if reference_model:
        weights += 2 * p / (n if stage >= 3 else 1)
    # activations with gradient checkpointing: ~1e5 bytes per token per billion^0.5 params
    activations = micro_batch * seq_len * 1.0e5 * math.sqrt(params_b)
    return TrainerMemory(weights / GIB, grads / GIB, optimizer / GIB, activations / GIB)


def inference_memory_gib(
    params_b: float, tensor_parallel: int, gpu_gib: float, utilization: float
) -> tuple[float, float]:
    """(weights per GPU, KV-cache budget per GPU) for a vLLM replica."""
    weights = 2 * params_b * 1e9 / tensor_parallel / GIB
    kv = gpu_gib * utilization - weights - 1.0  # 1 GiB: activations and graphs
    return weights, kv


def cost(
    usd_per_gpu_hour: float,
    gpus: int,
    max_steps: int,
    step_seconds: float | None,
    host_usd_per_hour: float = 0.0,
) -> Cost:
    """A backend's rented GPUs at the catalog's price per GPU-hour, and what it bills for
    the CPU and memory beside them."""
    host = round(host_usd_per_hour, 2)
    total = round(round(usd_per_gpu_hour * gpus, 2) + host, 2)
    return run_cost(total, max_steps, step_seconds, "catalog", host_usd_per_hour=host)


def run_cost(
    usd_per_hour: float,
    max_steps: int,
    step_seconds: float | None,
    source: str,
    *,
    host_usd_per_hour: float = 0.0,
) -> Cost:
    """The price per hour of the run's machines, and of the run when its step time is known;
    a price of source "none" is unknown, so the run's is too."""
    host = host_usd_per_hour
    if step_seconds is None:
        return Cost(usd_per_hour, source=source, host_usd_per_hour=host)
    hours = round(max_steps * step_seconds / 3600, 2)
    per_run = None if source == "none" else round(usd_per_hour * max_steps * step_seconds / 3600, 2)
    return Cost(usd_per_hour, hours, per_run, source=source, host_usd_per_hour=host)
