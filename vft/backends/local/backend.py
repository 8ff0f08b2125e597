"""LocalBackend: preflight this machine, then run the plan's node 0 under the supervisor.

In the foreground the node runs in this process (`start_node`); detached, it is the same
node entry as a command (`node_argv`) in its own session, its pid in run.json, so
`vft status/logs/stop` work from the run folder alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

from vft.backends.local import preflight
from vft.core.errors import PreflightError
from vft.core.plan import Plan, Ports
from vft.core.planning.capabilities import Capabilities
from vft.core.plugins.backend import Backend
from vft.core.runs.folders import FINISHED, Attempt, RunStatus

STOP_EXTRA_S = 15.0  # beyond the plan's grace, for the supervisor's own teardown


class LocalBackend(Backend):
    name = "local"
    capabilities = Capabilities(
        multi_node=False,
        detach=True,
        outputs=True,
        cpu=True,
        limits={"multi_node": "one machine; use the modal or slurm backend for nodes > 1"},
    )

    # -- before launch ---------------------------------------------------------------------
    def choose_ports(self, requested: Ports) -> Ports:
        """The requested ports, each one taken on this machine moved to a free one."""
        return preflight.free_ports(requested)

    def check(self, plan: Plan, *, force: bool = False) -> list[str]:
        problems: list[str] = []
        notes: list[str] = []
        if not plan.is_cpu:
            gpus, source = preflight.query_gpus()
            if gpus is None:
                problems.append(
                    f"resources.gpus: the plan needs {plan.gpus_per_node} x {plan.gpu_type} "
                    f"but this machine has no usable NVIDIA GPU: {source}"
                )
            else:
                seen = preflight.visible(gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))
                found, more = preflight.gpu_problems(plan, seen)
                problems += found
                notes += more
        for key, port in plan.bound_ports(0).items():
            if not preflight.port_free(port):
                problems.append(f"port {port} ({key}) is already in use on this machine")
        if problems and not force:
            raise PreflightError(
                "; ".join(problems),
                hint="use another backend (vft backends), or --force to launch anyway",
            )
        return notes + [f"--force: going on although {p}" for p in problems]

    # -- launch ----------------------------------------------------------------------------
    def launch(self, plan: Plan, attempt: Attempt, *, detach: bool) -> int:
        from vft.core.node.entry import node_argv, start_node
        from vft.core.node.install import install

        attempt = Attempt(attempt.path.resolve())
        for note in install(
            [plan.path(item) for item in plan.install], attempt.log_path("install")
        ):
            print(f"vft: {note}", file=sys.stderr)
        if not detach:
            return start_node(attempt.path)
        argv = node_argv(str(attempt.path), python=sys.executable, echo=False)
        attempt.update(
            status=RunStatus.STARTING, detached=True
        )  # before the node can write "running"
        attempt.logs_dir.mkdir(parents=True, exist_ok=True)
        with open(attempt.log_path("vft"), "ab") as log:
            agent = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # outlives this terminal; `vft stop` ends it
            )
        attempt.update(supervisor_pid=agent.pid, supervisor_create_time=_create_time(agent.pid))
        return 0

    # -- after launch ----------------------------------------------------------------------
    def status(self, attempt: Attempt) -> dict[str, Any]:
        from vft.core.node.procs import pid_alive

        record = attempt.record()
        nodes = attempt.nodes()
        status = record.get("status", "unknown")
        if status in ("starting", "running") and not pid_alive(
            record.get("supervisor_pid"), record.get("supervisor_create_time")
        ):
            status = RunStatus.LOST  # the supervisor died without writing its end (kill -9, reboot)
        processes = {
            name: info
            for node in nodes.values()
            for name, info in (node.get("processes") or {}).items()
        }
        return {**record, "status": status, "processes": processes, "nodes": nodes}

    def stop(self, attempt: Attempt) -> None:
        """Orderly: SIGTERM to the supervisor, which stops its trees; kill what is left after."""
        from vft.core.node.procs import pid_alive

        record = attempt.record()
        pid, created = record.get("supervisor_pid"), record.get("supervisor_create_time")
        try:
            grace = attempt.plan().run.stop_grace_s
        except (OSError, ValueError, KeyError):  # no readable plan.json: the recipe's default
            from vft.core.recipe import Run

            grace = float(Run.model_fields["stop_grace_s"].default)
        if pid is not None and pid_alive(pid, created):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace + STOP_EXTRA_S
            while pid_alive(pid, created) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid, created):
                os.kill(int(pid), signal.SIGKILL)
        self._kill_leftovers(attempt)
        if attempt.record().get("status") not in FINISHED:
            attempt.update(status=RunStatus.STOPPED, ended_at=time.time())

    def _kill_leftovers(self, attempt: Attempt) -> None:
        """Process groups a supervisor that died (kill -9) could not stop."""
        from vft.core.node.procs import pid_alive

        for node in attempt.nodes().values():
            for info in (node.get("processes") or {}).values():
                if info.get("exit_code") is None and pid_alive(
                    info.get("pid"), info.get("create_time")
                ):
                    with contextlib.suppress(ProcessLookupError, PermissionError, KeyError):
                        os.killpg(info["pgid"], signal.SIGKILL)


def _create_time(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None
