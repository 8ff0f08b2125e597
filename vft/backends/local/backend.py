"""LocalBackend: preflight this machine, then run the plan's node 0 under the supervisor.

In the foreground the node runs in this process (`start_node`); detached, it is the same
node entry as a command (`node_argv`) in its own session, its pid in run.json, so
`vft status/logs/stop` work from the run folder alone. Ports are reserved machine-wide
(ports.py); `vft stop` signals only pids whose start time matches the record, and ends
what a killed supervisor left behind by the run's marker (vft/core/node/sweep.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any, ClassVar

from vft.backends.local import preflight
from vft.core.errors import PreflightError
from vft.core.plan import Plan, Ports, Process, Role
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
    #: a transient failure restarts by launching a new attempt (vft/backends/restarts.py);
    #: `resources.restarts` unset means this many
    restarts_by_relaunch: ClassVar[bool] = True
    default_restarts: ClassVar[int] = 0

    # -- before launch ---------------------------------------------------------------------
    def describe(self, plan: Plan) -> list[tuple[str, str]]:
        """The restarts row, and a warning when this machine has too few GPUs for the plan
        (the refusal itself stays with `check`, at run time)."""
        from vft.backends.restarts import plan_row

        rows = [plan_row(plan.run.restarts, self.default_restarts)]
        short = preflight.shortfall(plan)
        if short is not None:
            rows.append(("warning", short))
        return rows

    def choose_ports(self, requested: Ports) -> Ports:
        """The requested ports, each one taken on this machine (bound, or reserved by a run
        starting at the same time) moved to a free one, and reserved for this run."""
        from vft.backends.local import ports

        return ports.reserve(requested)

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
        problems += _missing_programs(plan)
        if problems and not force:
            raise PreflightError(
                "; ".join(problems),
                hint="use another backend, see vft backends; or --force to launch anyway",
            )
        return notes + [f"--force: going on although {p}" for p in problems]

    # -- launch ----------------------------------------------------------------------------
    def launch(self, plan: Plan, attempt: Attempt, *, detach: bool, restarts: int = 0) -> int:
        """Run the plan on this machine; `restarts`: how many times a transient failure
        starts a new attempt from the newest checkpoint (vft/backends/restarts.py), here
        in the foreground, by the detached agent (agent.py) otherwise. The exit code is
        the last attempt's; its ports stay reserved across the attempts."""
        from vft.backends.local import ports
        from vft.backends.local.agent import agent_argv, run_attempts
        from vft.core.node.entry import node_argv
        from vft.core.node.guard import Interrupted
        from vft.core.node.identity import create_time
        from vft.core.node.install import install

        attempt = Attempt(attempt.path.resolve())
        bound = list(plan.bound_ports(0).values())
        try:
            notes = install([plan.path(item) for item in plan.install], attempt.log_path("install"))
        except Interrupted as exc:  # a final state, never "created" forever
            ports.release(bound)
            attempt.update(
                status=RunStatus.INTERRUPTED,
                ended_at=time.time(),
                exit_code=exc.exit_code,
                note=exc.line(),
            )
            print(f"vft: {exc.line()}", file=sys.stderr)
            return exc.exit_code
        for note in notes:
            print(f"vft: {note}", file=sys.stderr)
        if not detach:
            try:
                return run_attempts(attempt, restarts, echo=True)
            finally:
                ports.release(bound)
        if restarts:
            argv = agent_argv(attempt.path, restarts, python=sys.executable)
        else:
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
        created = create_time(agent.pid)
        ports.hand_over(bound, agent.pid, created)  # reserved for as long as the agent runs
        attempt.update(supervisor_pid=agent.pid, supervisor_create_time=created)
        return 0

    # -- after launch ----------------------------------------------------------------------
    def status(self, attempt: Attempt) -> dict[str, Any]:
        from vft.core.node.identity import same

        record = attempt.record()
        nodes = attempt.nodes()
        status = record.get("status", "unknown")
        if status in ("starting", "running") and not same(
            record.get("supervisor_pid"), record.get("supervisor_create_time")
        ):
            # the supervisor died without writing its end (kill -9, reboot); while any of
            # the run's processes survive it, `vft stop` has something to stop
            status = RunStatus.ORPHANED if _leftovers(nodes) else RunStatus.LOST
        processes = {
            name: info
            for node in nodes.values()
            for name, info in (node.get("processes") or {}).items()
        }
        return {**record, "status": status, "processes": processes, "nodes": nodes}

    def stop(self, attempt: Attempt) -> None:
        """Orderly: SIGTERM to the supervisor, which stops its trees; then whatever of the
        run is left (found by its marker and recorded identities) is stopped too, and the
        record gets a final state. Only a pid whose start time matches is ever signalled."""
        from vft.core.node.identity import same, send
        from vft.core.node.limits import MAX_STOP_GRACE_S, seconds

        record = attempt.record()
        pid, created = record.get("supervisor_pid"), record.get("supervisor_create_time")
        try:
            grace = seconds("run.stop_grace_s", attempt.plan().run.stop_grace_s, MAX_STOP_GRACE_S)[
                0
            ]
        except (OSError, ValueError, KeyError):  # unreadable or unbounded: the recipe's default
            from vft.core.recipe import Run

            grace = float(Run.model_fields["stop_grace_s"].default)
        was_alive = same(pid, created)
        if was_alive:
            send(pid, created, signal.SIGTERM)
            deadline = time.monotonic() + grace + STOP_EXTRA_S
            while same(pid, created) and time.monotonic() < deadline:
                time.sleep(0.1)
            send(pid, created, signal.SIGKILL)
        left = self._kill_leftovers(attempt, grace)
        if attempt.record().get("status") not in FINISHED:
            fields: dict[str, Any] = {"status": RunStatus.STOPPED, "ended_at": time.time()}
            if not was_alive:
                fields["note"] = (
                    f"the supervisor (pid {pid}) was gone; vft stop ended "
                    f"{len(left)} process(es) it had left running"
                )
            attempt.update(**fields)

    def _kill_leftovers(self, attempt: Attempt, grace: float = 2.0) -> list[int]:
        """What a supervisor that died (kill -9) could not stop, by marker and identity."""
        from vft.core.node import sweep

        found: list[int] = []
        for node in attempt.nodes().values():
            found += sweep.stop(_marker(node), sweep.roots_of(node), grace)
        return found


def _marker(node: dict[str, Any]) -> str | None:
    marker = node.get("marker")
    return marker if isinstance(marker, str) and marker else None


def _leftovers(nodes: dict[int, dict[str, Any]]) -> bool:
    from vft.core.node import sweep

    for node in nodes.values():
        trees, _ = sweep.find(_marker(node), sweep.roots_of(node))
        if trees.alive():
            return True
    return False


def _missing_programs(plan: Plan) -> list[str]:
    """The plan's programs this machine does not have (`accelerate` without vft's train
    extra, `vllm` without an inference stack), found as the supervisor will look them up:
    refused before a run folder exists rather than as exit 127 after it."""
    from vft.core.node.procs import resolve_program

    missing = []
    for proc in plan.processes_on(0):
        if not proc.argv:
            continue
        env = {**os.environ, **proc.env}
        if resolve_program(proc.argv[0], env, plan.run.workdir or None) is None:
            where = "" if os.sep in proc.argv[0] else " (looked beside python and on PATH)"
            missing.append(
                f"{proc.name}: command {proc.argv[0]!r} not found{where}; {_fix(plan, proc)}"
            )
    return missing


def _fix(plan: Plan, proc: Process) -> str:
    """How to get a missing program: vLLM for GPUs is an extra of its own; the CPU stacks
    (and the trainer's) are what `vft doctor` checks and says how to install."""
    if proc.role == Role.INFERENCE and not plan.is_cpu:
        return "vLLM for GPUs comes with vft's inference extra: pip install 'vft[inference]'"
    return "`vft doctor` says which stack is missing and how to install it"
