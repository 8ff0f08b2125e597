"""What a backend can give, declared as data and checked against a request at plan time.

SkyPilot-style: a backend lists what it cannot do with the reason, and the planner refuses
a recipe that needs more, before anything starts, printing that reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vft.core.errors import PlanError

if TYPE_CHECKING:
    from vft.core.gpus import GpuRequest


@dataclass(frozen=True)
class HostRequest:
    """What the price of a backend's CPU and memory beside the GPUs depends on."""

    gpus_per_node: int  # 0 for a CPU-only plan
    nodes: int
    offload_optimizer: bool  # ZeRO-3 optimizer offload: the host holds Adam's states
    options: Mapping[str, Any]  # the recipe's validated [backend.<name>] table


@dataclass(frozen=True)
class Capabilities:
    """What a backend can give; the planner refuses a recipe that needs more, with the reason.

    `gpu_types` None means every type in the catalog; `max_gpus_by_type` narrows the
    per-node count for some types (Modal: at most 4 x A10G); `request_check` sees the
    whole request (type, count, nodes) and returns why the backend cannot give it, or
    None. `limits` maps a feature name to the reason it is missing, shown verbatim.
    `host_usd_per_hour` prices what a renting backend bills beside the GPUs (Modal: the
    container's cores and memory), all nodes together; the plan's cost, and so the budget
    clock, includes it.
    """

    multi_node: bool = False
    detach: bool = True
    outputs: bool = True
    cpu: bool = True
    max_gpus_per_node: int | None = None
    max_nodes: int | None = None
    gpu_types: frozenset[str] | None = None
    limits: Mapping[str, str] = field(default_factory=dict)
    max_gpus_by_type: Mapping[str, int] = field(default_factory=dict)
    request_check: Callable[[GpuRequest, int], str | None] | None = None
    host_usd_per_hour: Callable[[HostRequest], float] | None = None

    def __post_init__(self) -> None:
        # forgiving in what a plugin author writes: a list or set of names is fine
        if self.gpu_types is not None and not isinstance(self.gpu_types, frozenset):
            object.__setattr__(self, "gpu_types", frozenset(self.gpu_types))
        unknown = set(self.limits) - set(FEATURES)
        if unknown:
            raise ValueError(
                f"Capabilities.limits: unknown feature(s) {sorted(unknown)}; known: {FEATURES}"
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "multi_node": self.multi_node,
            "detach": self.detach,
            "outputs": self.outputs,
            "cpu": self.cpu,
            "max_gpus_per_node": self.max_gpus_per_node,
            "max_nodes": self.max_nodes,
            "gpu_types": sorted(self.gpu_types) if self.gpu_types is not None else "any",
            "limits": dict(self.limits),
            "max_gpus_by_type": dict(self.max_gpus_by_type),
            "request_check": self.request_check is not None,
            "host_priced": self.host_usd_per_hour is not None,
        }

    def require(self, backend: str, feature: str, key: str) -> None:
        """Raise a one-line PlanError when a yes/no feature (detach, outputs) is missing.

        `key` is what the user wrote that needs it, e.g. "--detach".
        """
        if feature not in ("multi_node", "detach", "outputs", "cpu"):
            raise ValueError(f"not a yes/no capability: {feature!r}")
        if not getattr(self, feature):
            raise PlanError(
                f"{key}: backend {backend!r} cannot {FEATURES[feature]}"
                + _why(self.limits.get(feature))
            )

    def check(self, backend: str, request: GpuRequest, nodes: int) -> None:
        """Raise a one-line PlanError if this backend cannot serve the request."""
        if request.is_cpu and not self.cpu:
            raise PlanError(
                f"resources.gpus: backend {backend!r} cannot run CPU-only recipes"
                + _why(self.limits.get("cpu"))
            )
        if nodes > 1 and not self.multi_node:
            raise PlanError(
                f"resources.nodes: backend {backend!r} runs on one node only, got nodes = {nodes}"
                + _why(self.limits.get("multi_node"))
            )
        if self.max_nodes is not None and nodes > self.max_nodes:
            raise PlanError(
                f"resources.nodes: backend {backend!r} allows at most {self.max_nodes} nodes, "
                f"got {nodes}" + _why(self.limits.get("max_nodes"))
            )
        if request.is_cpu:
            return
        assert request.type is not None
        offered = _catalog_names(self.gpu_types)
        if offered is not None and request.type.name not in offered:
            raise PlanError(
                f"resources.gpus: backend {backend!r} does not offer {request.type.name}; "
                f"it offers {', '.join(sorted(offered)) or 'no GPUs'}"
                + _why(self.limits.get("gpu_types"))
            )
        cap = self.max_gpus_per_node
        if cap is not None and request.count > cap:
            total = request.count * nodes
            need = math.ceil(total / cap)
            hint = (
                f"use nodes = {need} with {request.type.name}:{cap}"
                if self.multi_node
                else "use fewer GPUs"
            )
            raise PlanError(
                f"resources.gpus: backend {backend!r} gives at most {cap} GPUs per node, "
                f"got {request}; {hint}" + _why(self.limits.get("max_gpus_per_node"))
            )
        type_cap = next(
            (
                count
                for name, count in self.max_gpus_by_type.items()
                if _catalog_names(frozenset({name})) == {request.type.name}
            ),
            None,
        )
        if type_cap is not None and request.count > type_cap:
            raise PlanError(
                f"resources.gpus: backend {backend!r} gives at most {type_cap} x "
                f"{request.type.name} per node, got {request}"
            )
        if self.request_check is not None and (reason := self.request_check(request, nodes)):
            raise PlanError(f"resources.gpus: backend {backend!r} cannot give {request}: {reason}")


# feature -> what it lets a backend do, in the words of an error message
FEATURES: dict[str, str] = {
    "multi_node": "run on more than one node",
    "detach": "detach (run in the background and return at once)",
    "outputs": "list or download a run's outputs",
    "cpu": "run CPU-only recipes",
    "max_gpus_per_node": "give more GPUs per node",
    "max_nodes": "give more nodes",
    "gpu_types": "give this GPU type",
}


def _why(reason: str | None) -> str:
    return f" ({reason})" if reason else ""


def _catalog_names(types: frozenset[str] | None) -> set[str] | None:
    """A backend's GPU names in the catalog's spelling ("h100" -> "H100"); unknown ones kept."""
    if types is None:
        return None
    from vft.core.errors import UserError
    from vft.core.gpus import catalog

    names = set()
    for t in types:
        try:
            names.add(catalog().lookup(t).name)
        except UserError:
            names.add(t)
    return names
