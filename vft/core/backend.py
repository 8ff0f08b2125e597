"""The `Backend` base class and its capabilities, declared as data and checked at plan time."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from vft.core.errors import PlanError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from vft.core.gpus import GpuRequest
    from vft.core.plan import Plan
    from vft.core.runs import Attempt


@dataclass(frozen=True)
class Capabilities:
    """What a backend can give; the planner refuses a recipe that needs more, with the reason.

    `gpu_types` None means every type in the catalog; `limits` maps a feature name to the
    reason it is missing, shown verbatim to the user.
    """

    multi_node: bool = False
    detach: bool = True
    outputs: bool = True
    cpu: bool = True
    max_gpus_per_node: int | None = None
    max_nodes: int | None = None
    gpu_types: frozenset[str] | None = None
    limits: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "multi_node": self.multi_node,
            "detach": self.detach,
            "outputs": self.outputs,
            "cpu": self.cpu,
            "max_gpus_per_node": self.max_gpus_per_node,
            "max_nodes": self.max_nodes,
            "gpu_types": sorted(self.gpu_types) if self.gpu_types is not None else "any",
        }

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
            raise PlanError(f"resources.nodes: backend {backend!r} allows at most {self.max_nodes}")
        if request.is_cpu:
            return
        assert request.type is not None
        if self.gpu_types is not None and request.type.name not in self.gpu_types:
            raise PlanError(
                f"resources.gpus: backend {backend!r} does not offer {request.type.name}; "
                f"it offers {', '.join(sorted(self.gpu_types))}"
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
                f"got {request}; {hint}"
            )


def _why(reason: str | None) -> str:
    return f" ({reason})" if reason else ""


class Backend:
    """Runs a Plan somewhere. Subclass it, set `name` and `capabilities`, register it.

    Modules defining a backend must stay light: heavy libraries (modal, torch) are
    imported inside the methods that need them, so `vft plan` stays fast.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: pydantic model for the recipe's `[backend.<name>]` table, or None if it takes none
    options_model: ClassVar[type[BaseModel] | None] = None

    def describe(self, plan: Plan) -> list[tuple[str, str]]:
        """Extra (label, text) rows for `vft plan`: image steps, batch script, ..."""
        return []

    def check(self, plan: Plan, *, force: bool = False) -> list[str]:
        """Preflight before anything is started or paid for; raise PreflightError to refuse.

        Returns notes to show the user (ports moved, GPUs found, ...).
        """
        return []

    def launch(self, plan: Plan, attempt: Attempt, *, detach: bool) -> int:
        """Run the plan; return the exit code (0 at once when detached)."""
        raise NotImplementedError

    def status(self, attempt: Attempt) -> dict[str, Any]:
        """The run's state: at least {"status": ..., "exit_code": ...}."""
        return attempt.record()

    def logs(self, attempt: Attempt, *, follow: bool, process: str | None) -> Iterator[str]:
        raise NotImplementedError

    def stop(self, attempt: Attempt) -> None:
        raise NotImplementedError

    def list_outputs(self, attempt: Attempt) -> list[tuple[str, int]]:
        """(relative path, size in bytes) of every file the run wrote."""
        raise NotImplementedError

    def get_outputs(self, attempt: Attempt, dest: Path, *, prefix: str = "") -> list[Path]:
        """Download the run's files (those under `prefix`) into `dest`; return what was written."""
        raise NotImplementedError
