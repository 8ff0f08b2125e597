"""The `Backend` base class and its capabilities, declared as data and checked at plan time.

A backend receives a Plan (vft/core/plan.py), never a Recipe, and runs each node's share of
it with the supervisor: `vft agent RUN_DIR --node-rank N --addresses a,b` on every node
(`agent_argv` builds that command). docs/plugins.md walks through writing one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
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
    limits: Mapping[str, str] = field(default_factory=dict)

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


def agent_argv(
    run_dir: str, rank: int | str, addresses: Sequence[str] | str, *, python: str = "python"
) -> list[str]:
    """The command a backend runs on each node: the supervisor for that node's processes.

    `rank` and `addresses` may be a scheduler's variables (e.g. "$SLURM_NODEID") when the
    command goes into a batch script; `python` is the interpreter on the node.
    """
    joined = addresses if isinstance(addresses, str) else ",".join(addresses)
    return [python, "-m", "vft", "agent", run_dir, "--node-rank", str(rank), "--addresses", joined]


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

    def ports_to_move(self, plan: Plan) -> dict[str, int]:
        """Ports of the plan already taken where it will run, each with a free replacement.

        `vft run` re-plans with them. Backends whose nodes are fresh machines return {}.
        """
        return {}

    def check(self, plan: Plan, *, force: bool = False) -> list[str]:
        """Preflight before anything is started or paid for; raise PreflightError to refuse.

        Returns notes to show the user (ports moved, GPUs found, ...).
        """
        return []

    def launch(self, plan: Plan, attempt: Attempt, *, detach: bool) -> int:
        """Run the plan; return its exit code, or 0 at once when `detach` is true.

        `attempt.path` already holds plan.json and the rendered files; record progress
        with `attempt.update(status=..., exit_code=...)` so `vft status` can read it.
        """
        raise NotImplementedError

    def status(self, attempt: Attempt) -> dict[str, Any]:
        """The run's state: at least {"status": ..., "exit_code": ...}."""
        return attempt.record()

    # logs and outputs: by default the attempt folder is on this machine or a filesystem it
    # mounts (local, a cluster's shared disk); a backend whose folder is remote overrides them

    def logs(self, attempt: Attempt, *, follow: bool, process: str | None) -> Iterator[str]:
        """Lines of the run's logs (one process's when `process` is set); wait for more if `follow`."""
        from vft.core.run_logs import read_logs
        from vft.core.runs import FINISHED

        def running() -> bool:
            return self.status(attempt).get("status") not in FINISHED

        return read_logs(attempt, process=process, follow=follow, running=running)

    def stop(self, attempt: Attempt) -> None:
        """Stop every process of the run (the supervisor turns SIGTERM into a clean stop)."""
        raise NotImplementedError

    def list_outputs(self, attempt: Attempt) -> list[tuple[str, int]]:
        """(relative path, size in bytes) of every file the run wrote."""
        from vft.core.run_outputs import list_files

        return list_files(attempt)

    def get_outputs(self, attempt: Attempt, dest: Path, *, prefix: str = "") -> list[Path]:
        """Download the run's files (those under `prefix`) into `dest`; return what was written."""
        from vft.core.run_outputs import copy_files

        return copy_files(attempt, dest, prefix=prefix)
