"""ModalBackend: the same Plan on Modal's GPUs; `modal` is imported only by the methods
that talk to Modal, never by `vft plan` or `vft backends`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vft.backends.modal.preflight import MAX_CLUSTER_NODES, MAX_GPUS, cluster_problem
from vft.backends.modal.pricing import host_usd_per_hour
from vft.core.plan import Plan
from vft.core.planning.capabilities import Capabilities
from vft.core.plugins.backend import Backend
from vft.core.runs.folders import Attempt


class ModalBackend(Backend):
    name = "modal"
    options_model = "vft.backends.modal.options:ModalOptions"  # built when used
    requires = ("modal",)
    install_hint = "pip install 'vft[modal]'"
    capabilities = Capabilities(
        multi_node=True,
        detach=True,
        outputs=True,
        cpu=True,
        max_gpus_per_node=max(MAX_GPUS.values()),
        max_nodes=MAX_CLUSTER_NODES,
        gpu_types=frozenset(MAX_GPUS),
        max_gpus_by_type={gpu: n for gpu, n in MAX_GPUS.items() if n < max(MAX_GPUS.values())},
        request_check=cluster_problem,
        host_usd_per_hour=host_usd_per_hour,
        limits={
            "max_gpus_per_node": "Modal gives at most 8 GPUs per container (A10G: 4)",
            "max_nodes": "a Modal cluster has at most 32 nodes of 8 GPUs",
        },
    )

    def describe(self, plan: Plan) -> list[tuple[str, str]]:
        from vft.backends.modal.preflight import check_gpus
        from vft.backends.modal.spec import describe_rows, function_spec

        check_gpus(plan)  # `vft plan` already refuses what Modal does not offer
        return describe_rows(plan, function_spec(plan))

    def check(self, plan: Plan, *, force: bool = False) -> list[str]:
        """GPU shape and paths first (offline, before any build), then login and secrets."""
        from vft.backends.modal import preflight
        from vft.backends.modal.spec import function_spec

        preflight.check_gpus(plan)
        spec = function_spec(plan)
        preflight.check_paths(plan, spec)
        self.require("a run")
        preflight.check_account(spec.secrets)
        notes = [f"Modal: logged in; secrets found: {', '.join(spec.secrets) or 'none'}"]
        if plan.trainer.wandb is not None and "wandb" not in spec.secrets:
            notes.append("logging.wandb_project is set but no 'wandb' secret is attached")
        return notes

    def launch(self, plan: Plan, attempt: Attempt, *, detach: bool) -> int:
        self.require("a run")
        from vft.backends.modal.launch import launch

        return launch(plan, attempt, detach=detach)

    def status(self, attempt: Attempt) -> dict[str, Any]:
        """run.json, brought up to date from Modal; without modal installed, a record
        that needs no update (finished, never launched) is still the answer."""
        from vft.backends.modal import remote
        from vft.core.runs.folders import FINISHED

        record = attempt.record()
        if record.get("status") not in FINISHED and (record.get("modal") or {}).get(
            "function_call_id"
        ):
            self.require("following a run")
        return remote.status(attempt)

    def logs(self, attempt: Attempt, *, follow: bool, process: str | None) -> Iterator[str]:
        self.require("reading a run's logs")
        from vft.backends.modal import remote

        return remote.logs(attempt, follow=follow, process=process)

    def stop(self, attempt: Attempt) -> None:
        self.require("stopping a run")
        from vft.backends.modal import remote

        remote.stop(attempt)

    def list_outputs(self, attempt: Attempt) -> list[tuple[str, int]]:
        self.require("listing a run's outputs")
        from vft.backends.modal import outputs

        return outputs.list_outputs(attempt)

    def get_outputs(self, attempt: Attempt, dest: Path, *, prefix: str = "") -> list[Path]:
        self.require("getting a run's outputs")
        from vft.backends.modal import outputs

        return outputs.get_outputs(attempt, dest, prefix=prefix)
