"""The public API for plugin authors: everything a backend or inference-engine plugin needs.

A plugin imports from here and nowhere else in vft; names here keep their meaning across
minor versions. docs/plugins.md walks from an empty folder to `vft run` with it.

- hooks: `hookimpl` marks `vft_register_backends(register)` /
  `vft_register_inference_servers(register)` in a module named by a `vft` entry point;
- backends: `Backend` (subclass it), `Capabilities` (what it can give, as data), the Plan
  types it receives, `node_argv` / `start_node` (the one way to run a node's processes),
  run folders (`Attempt`, `run_folder`, `RunStatus`, `FINISHED`), `install_environments`;
- engines: `InferenceServer`, `ServerPart`;
- errors: `UserError` (one line, exit 2), `PlanError`, `PreflightError`, `RecipeError`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vft.core.engines.base import InferenceServer, ServerPart
from vft.core.errors import PlanError, PreflightError, RecipeError, UserError
from vft.core.hooks import hookimpl
from vft.core.plan import (
    Cost,
    EnvironmentPlan,
    InferenceMode,
    InferencePlan,
    NodeContext,
    Plan,
    Ports,
    Process,
    Role,
    RunSettings,
    TrainerPlan,
    TrainerStart,
    Training,
)
from vft.core.planning.capabilities import Capabilities, HostRequest
from vft.core.plugins.backend import Backend
from vft.core.recipe.tables import Table, field

if TYPE_CHECKING:
    from vft.core.node.entry import node_argv, start_node
    from vft.core.node.install import install as install_environments
    from vft.core.runs import FINISHED, Attempt, RunStatus, run_folder, write_json_atomic

# what running a node needs (the supervisor, psutil, run folders) is imported on first use:
# every plugin imports this module at registration, when `vft plan` and `vft backends` run
_LAZY = {
    "node_argv": ("vft.core.node.entry", "node_argv"),
    "start_node": ("vft.core.node.entry", "start_node"),
    "install_environments": ("vft.core.node.install", "install"),
    "FINISHED": ("vft.core.runs", "FINISHED"),
    "Attempt": ("vft.core.runs", "Attempt"),
    "RunStatus": ("vft.core.runs", "RunStatus"),
    "run_folder": ("vft.core.runs", "run_folder"),
    "write_json_atomic": ("vft.core.runs", "write_json_atomic"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'vft.plugin' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


__all__ = [
    "FINISHED",
    "Attempt",
    "Backend",
    "Capabilities",
    "Cost",
    "EnvironmentPlan",
    "HostRequest",
    "InferenceMode",
    "InferencePlan",
    "InferenceServer",
    "NodeContext",
    "Plan",
    "PlanError",
    "Ports",
    "PreflightError",
    "Process",
    "RecipeError",
    "Role",
    "RunSettings",
    "RunStatus",
    "ServerPart",
    "Table",
    "TrainerPlan",
    "TrainerStart",
    "Training",
    "UserError",
    "field",
    "hookimpl",
    "install_environments",
    "node_argv",
    "run_folder",
    "start_node",
    "write_json_atomic",
]
