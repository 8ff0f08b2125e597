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

from vft.core.engines.base import InferenceServer, ServerPart
from vft.core.errors import PlanError, PreflightError, RecipeError, UserError
from vft.core.hooks import hookimpl
from vft.core.node.entry import node_argv, start_node
from vft.core.node.install import install as install_environments
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
from vft.core.planning.capabilities import Capabilities
from vft.core.plugins.backend import Backend
from vft.core.runs import FINISHED, Attempt, RunStatus, run_folder, write_json_atomic

__all__ = [
    "FINISHED",
    "Attempt",
    "Backend",
    "Capabilities",
    "Cost",
    "EnvironmentPlan",
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
    "TrainerPlan",
    "TrainerStart",
    "Training",
    "UserError",
    "hookimpl",
    "install_environments",
    "node_argv",
    "run_folder",
    "start_node",
    "write_json_atomic",
]
