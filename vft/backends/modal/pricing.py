"""What a Modal container costs beside its GPUs: its size (policy as data) and its price.

Modal bills a container's cores and memory on top of its GPUs, by the larger of request
and use. The planner adds this to the plan's cost (through `Capabilities.host_usd_per_hour`)
so that `vft plan` shows one price and the budget clock counts all of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vft.core.planning.capabilities import HostRequest

# Container sizing per GPU. ZeRO-3 optimizer offload keeps Adam's states in host memory.
CPU_PER_GPU = 4.0
MEMORY_GIB_PER_GPU = 32
OFFLOAD_MEMORY_GIB_PER_GPU = 64
CPU_ONLY = (4.0, 16)  # cores, GiB for a CPU plan
# Modal's list prices: $0.0000131 per physical core-second, $0.00000222 per GiB-second
CPU_USD_PER_CORE_HOUR = 0.0000131 * 3600
MEMORY_USD_PER_GIB_HOUR = 0.00000222 * 3600


def container_size(
    gpus_per_node: int, offload_optimizer: bool, options: Mapping[str, Any]
) -> tuple[float, int]:
    """(cores, GiB) of each container: the recipe's `cpu` / `memory_gib` when set."""
    if gpus_per_node <= 0:
        cpu, memory = CPU_ONLY
    else:
        per_gpu = OFFLOAD_MEMORY_GIB_PER_GPU if offload_optimizer else MEMORY_GIB_PER_GPU
        cpu, memory = CPU_PER_GPU * gpus_per_node, per_gpu * gpus_per_node
    return float(options.get("cpu") or cpu), int(options.get("memory_gib") or memory)


def container_usd_per_hour(cpu: float, memory_gib: int, nodes: int) -> float:
    """All containers' cores and memory, per hour."""
    return (cpu * CPU_USD_PER_CORE_HOUR + memory_gib * MEMORY_USD_PER_GIB_HOUR) * nodes


def host_usd_per_hour(host: HostRequest) -> float:
    """The planner's question: what the run's containers cost per hour beside the GPUs."""
    cpu, memory = container_size(host.gpus_per_node, host.offload_optimizer, host.options)
    return container_usd_per_hour(cpu, memory, host.nodes)
