"""LocalBackend: preflight this machine, then run the plan's node 0 under the supervisor.

Detached, the supervisor is `python -m vft agent RUN_DIR ...` in its own session; its pid
is in run.json, so `vft status/logs/stop` work from the run folder alone.
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
from vft.core.backend import Backend, Capabilities
from vft.core.errors import PreflightError
from vft.core.plan import NodeContext, Plan
from vft.core.runs import FINISHED, Attempt

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
    def ports_to_move(self, plan: Plan) -> dict[str, int]:
        """Taken ports of the plan and a free replacement for each (to re-plan with)."""
        return preflight.ports_to_move(plan)

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
        for key, port in preflight.plan_ports(plan).items():
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
        from vft.core.install import install
        from vft.core.supervisor import run_node

        attempt = Attempt(attempt.path.resolve())
        for note in install(plan.install, attempt.log_path("install")):
            print(f"vft: {note}", file=sys.stderr)
        if not detach:
            ctx = NodeContext.here(0, ("127.0.0.1",), str(attempt.path))
            return run_node(plan, attempt, ctx)
        argv = [sys.executable, "-m", "vft", "agent", str(attempt.path)]
        argv += ["--node-rank", "0", "--addresses", "127.0.0.1", "--no-echo"]
        attempt.update(status="starting", detached=True)  # before the agent can write "running"
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
        from vft.core.procs import pid_alive

        record = attempt.record()
        nodes = attempt.nodes()
        status = record.get("status", "unknown")
        if status in ("starting", "running") and not pid_alive(
            record.get("supervisor_pid"), record.get("supervisor_create_time")
        ):
            status = "lost"  # the supervisor died without writing its end (kill -9, reboot)
        processes = {
            name: info
            for node in nodes.values()
            for name, info in (node.get("processes") or {}).items()
        }
        return {**record, "status": status, "processes": processes, "nodes": nodes}

    def stop(self, attempt: Attempt) -> None:
        """Orderly: SIGTERM to the supervisor, which stops its trees; kill what is left after."""
        from vft.core.procs import pid_alive

        record = attempt.record()
        pid, created = record.get("supervisor_pid"), record.get("supervisor_create_time")
        try:
            grace = float(attempt.plan().run.get("stop_grace_s", 10))
        except (OSError, ValueError, KeyError):  # no readable plan.json: the default grace
            grace = 10.0
        if pid_alive(pid, created):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace + STOP_EXTRA_S
            while pid_alive(pid, created) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid, created):
                os.kill(pid, signal.SIGKILL)
        self._kill_leftovers(attempt)
        if attempt.record().get("status") not in FINISHED:
            attempt.update(status="stopped", ended_at=time.time())

    def _kill_leftovers(self, attempt: Attempt) -> None:
        """Process groups a supervisor that died (kill -9) could not stop."""
        from vft.core.procs import pid_alive

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
