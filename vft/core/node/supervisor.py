"""The supervisor: run every process of one node of a Plan, and never leave one behind.

`run_node(plan, attempt, ctx)` is the one implementation of readiness, crash propagation,
signals and logs that every backend uses (local directly, Modal in its container, a
cluster on each node through `vft agent`).

- Each process runs in its own session with exactly the plan's argv and env (merged over
  this process's environment, plus `VFT_SUPERVISOR_ID` so that stray descendants can be
  found); a bare argv[0] resolves next to this Python first, then on PATH.
- Readiness: every `ready_url` of the node is polled every 0.2 s. `run.trainer_start`:
  "overlap" (default) starts the trainer at once, its client waits for the server, so
  model loading overlaps; "after_ready" starts it once the server answers 200. A trainer
  node of a multi-node plan with no server of its own waits on the head's /health.
- The first process that exits non-zero (or a server that exits at all while the trainer
  runs) stops every tree: SIGTERM to all at once, one wait of `run.stop_grace_s`, then
  SIGKILL. The trainer exiting 0 stops the servers and the node exits 0.
- SIGINT/SIGTERM/SIGHUP: the same orderly stop, exit 128 + signal; a second signal kills.
- A budget (`run.max_usd` / `run.max_hours`, budget.py): near the cap the trainer is asked
  to save a checkpoint and stop (its exit 0 then ends the node); whatever still runs at
  cap - grace - 2 s is stopped, so the run is gone by the cap. Either way the status is
  "stopped: budget" (`stop_reason` "budget" in run.json: never restart it), exit code 0.
- SIGKILL of the supervisor itself: its watchdog (watchdog.py), a process of its own,
  stops every process the run started and records the end. Every wait is finite
  (limits.py): a plan's `inf` is refused, not waited out.
- Logs: `logs/<process>.log` each, `logs/vft.log` for the supervisor's own lines, and a
  live prefixed console merge (when `echo`); a full disk drops logs, never stops a child.

Records: `nodes/node-<rank>.json` (this node's processes, pids, exit codes, readiness),
written only by this node's supervisor; `run.json` is updated by node 0 only (status,
times, exit code, supervisor pid), so nodes on a shared filesystem never race on a file.
Secret values are redacted from everything written or printed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from subprocess import Popen
from typing import Any

from vft.core.errors import UserError
from vft.core.node.budget import BudgetClock, Due
from vft.core.node.identity import create_time
from vft.core.node.limits import MAX_READY_TIMEOUT_S, MAX_STOP_GRACE_S, seconds
from vft.core.node.logrelay import ConsoleMerge, make_pipe, relay, tail_lines
from vft.core.node.peers import FinishListener, announce, trainer_nodes
from vft.core.node.procs import (
    SUPERVISOR_ID_VAR,
    Trees,
    exit_code,
    on_signals,
    resolve_program,
    spawn,
    terminate,
)
from vft.core.node.ready import ReadyWatch, ready_urls
from vft.core.node.records import NodeRecord
from vft.core.node.verdict import verdict
from vft.core.node.watchdog import Watchdog
from vft.core.plan import NodeContext, Plan, Process, Role, SetupStep, TrainerStart
from vft.core.runs.folders import Attempt, RunStatus
from vft.core.secrets import Redactor, option_secret_names

EXIT_NOT_FOUND = 127
EXIT_READY_TIMEOUT = 124
TICK_S = 0.1
TREE_REFRESH_S = 1.0
TAIL_LINES = 20
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_node(plan: Plan, attempt: Attempt, ctx: NodeContext, *, echo: bool = True) -> int:
    """Run node `ctx.rank` of `plan` to the end; return its exit code (0 = trainer succeeded).

    Raises UserError, before anything starts, when the plan does not fit this node (fewer
    GPUs given than it uses, an address missing).
    """
    try:
        supervisor = Supervisor(plan, attempt, ctx, echo=echo)
    except ValueError as exc:
        raise UserError(f"node {ctx.rank}: {exc}") from None
    return supervisor.run()


@dataclass
class Child:
    proc: Process
    popen: Popen[bytes]
    relay: threading.Thread
    started_at: float
    reaped_at: float | None = None  # monotonic time the exit was seen, set by the reaper thread
    code: int | None = None
    ended_at: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Failure(Exception):
    """Ends the node: which process, why, and the exit code the node returns."""

    def __init__(self, name: str | None, reason: str, code: int) -> None:
        super().__init__(reason)
        self.name, self.reason, self.code = name, reason, code


class Supervisor:
    def __init__(self, plan: Plan, attempt: Attempt, ctx: NodeContext, *, echo: bool) -> None:
        self.plan, self.attempt, self.ctx = plan, attempt, ctx
        self.procs = [p.resolved(ctx) for p in plan.processes_on(ctx.rank)]
        self.trainer_start = plan.run.trainer_start
        run = plan.run
        self.ready_timeout, ready_note = seconds(
            "run.ready_timeout_s", run.ready_timeout_s, MAX_READY_TIMEOUT_S
        )
        self.grace, grace_note = seconds("run.stop_grace_s", run.stop_grace_s, MAX_STOP_GRACE_S)
        self.notes = [n for n in (ready_note, grace_note) if n]
        # processes start in the recipe's folder, where its relative paths point
        self.workdir = plan.run.workdir or None
        if self.workdir and not os.path.isdir(self.workdir):
            raise ValueError(
                f"run.workdir {self.workdir} (the recipe's folder) is not a folder here; "
                "on several nodes it must be on a filesystem every node mounts"
            )
        inherited = os.environ.get(SUPERVISOR_ID_VAR)
        self.marker = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.marker_value = f"{inherited},{self.marker}" if inherited else self.marker
        self.trees = Trees(self.marker)
        self.redactor = Redactor.for_env(
            os.environ,
            *(p.env for p in self.procs),
            names=option_secret_names(plan.backend_options),
        )
        names = [p.name for p in self.procs] + ["vft"]
        self.console = ConsoleMerge(names=names) if echo else None
        self.children: dict[str, Child] = {}
        self.wake = threading.Event()
        self.signals: list[int] = []
        self.watch: ReadyWatch | None = None
        self.peers: FinishListener | None = None
        self.record = NodeRecord(attempt, ctx, self.redactor, on_error=self.say)
        self.watchdog: Watchdog | None = None
        self.budget: BudgetClock | None = None
        attempt.logs_dir.mkdir(parents=True, exist_ok=True)
        # one file per node: appends from several hosts to one file on a network fs can tear
        events = "vft" if ctx.rank == 0 else f"vft-node{ctx.rank}"
        self._events_path = attempt.log_path(events)
        self._events = open(self._events_path, "a", buffering=1)  # noqa: SIM115

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> int:
        # handlers only append: the main loop wakes within TICK_S and acts
        with on_signals(STOP_SIGNALS, lambda signum, _: self.signals.append(signum)):
            return self._run()

    def _run(self) -> int:
        self.started_at = time.time()
        self.budget = BudgetClock.for_plan(self.plan, self.attempt.path, self.grace)
        try:
            self._start_watchdog()
            for note in self.notes:
                self.say(note)
            if self.budget is not None:
                self.say(f"budget: {self.budget.cap()}: the run stops before, a checkpoint first")
            self.record.start(self.started_at, self.trainer_start, **self._identity())
            code, failure = self._supervise(), None
        except Failure as exc:
            code, failure = exc.code, exc
            if self._running():  # else the report below is the whole story
                self.say(f"{exc.name or 'node'}: {exc.reason}")
        except BaseException as exc:  # a bug in vft must still leave nothing running
            code, failure = 1, Failure(None, f"supervisor error: {exc!r}", 1)
            self.say(failure.reason)
        try:
            self._stop_all(for_signal=bool(self.signals) and failure is None)
            self._join_relays()
            if failure is not None:
                self._report(failure)
            elif self._budget_ended():
                self._report_budget()
            self._record_end(code, failure)
            self._tell_peers(code)
        finally:
            if self.watchdog is not None:  # what could not be stopped, it keeps trying
                self.watchdog.done(clean=not self.trees.alive())
            if self.peers is not None:
                self.peers.close()
            if self.console is not None:
                self.console.close()
            with contextlib.suppress(OSError):  # what is still buffered, on a full disk
                self._events.close()
        return code

    def _start_watchdog(self) -> None:
        try:
            self.watchdog = Watchdog.start(
                self.attempt.path, self.ctx.rank, self.marker, self.grace, self._events_path
            )
        except OSError as exc:
            self.say(f"no watchdog ({exc}): a SIGKILL of vft would leave the run running")

    def _identity(self) -> dict[str, Any]:
        """What finds this run's processes once the supervisor is gone (`vft stop`)."""
        wd = self.watchdog
        return {
            "marker": self.marker,
            "watchdog_pid": wd.pid if wd else None,
            "watchdog_create_time": create_time(wd.pid) if wd else None,
        }

    def _supervise(self) -> int:
        if not self.procs:
            self.say(f"node {self.ctx.rank} has no processes in this plan")
            return 0
        names = [p.name for p in self.procs]
        if len(set(names)) != len(names):
            raise Failure(None, f"the plan names two processes alike: {names}", 2)
        programs = self._resolve_programs()  # all before any start: nothing half-started
        for step in self.plan.setup:
            if step.node == self.ctx.rank and (code := self._run_setup(step.resolved(self.ctx))):
                return code
        urls = ready_urls(self.plan, self.procs, self.ctx, self.trainer_start)
        trainers = [p for p in self.procs if p.role == Role.TRAINER]
        gate = bool(urls) and self.trainer_start == TrainerStart.AFTER_READY
        for p in self.procs:
            if p.role != Role.TRAINER or not gate:
                self._start(p, programs[p.name])
        if self.plan.nodes > 1 and not trainers and trainer_nodes(self.plan):
            try:
                self.peers = FinishListener(self.plan, self.ctx.rank, self.wake)
            except OSError as exc:
                raise Failure(None, f"cannot listen for the trainer nodes: {exc}", 1) from None
        if urls:
            self.watch = ReadyWatch(urls, self.wake).start()
            self.say(f"waiting for {', '.join(urls)} (timeout {self.ready_timeout:g} s)")
        ready_deadline = time.monotonic() + self.ready_timeout
        next_refresh = time.monotonic() + TREE_REFRESH_S
        ready = not urls
        while True:
            self.wake.wait(TICK_S)
            self.wake.clear()
            if self.signals:
                name = signal.Signals(self.signals[0]).name
                self.say(f"received {name}: stopping (again to kill at once)")
                return 128 + self.signals[0]
            if self.budget is not None and self._budget_tick():
                return 0
            if not ready and self.watch is not None and self.watch.ready_at is not None:
                ready = True
                self._on_ready()
                for p in trainers:
                    if p.name not in self.children:
                        self._start(p, programs[p.name])
            result = self._check_exits(ready, bool(urls))
            if result is not None:
                return result
            if self.peers is not None and (outcome := self.peers.outcome()) is not None:
                node, code = outcome
                if code:
                    raise Failure(
                        None, f"the trainer on node {node} failed (exit code {code})", code
                    )
                self.say("training finished on every trainer node: stopping the inference server")
                return 0
            if not ready and time.monotonic() > ready_deadline:
                raise Failure(
                    next((p.name for p in self.procs if p.ready_url), None),
                    f"not ready after {self.ready_timeout:g} s (run.ready_timeout_s)",
                    EXIT_READY_TIMEOUT,
                )
            if time.monotonic() > next_refresh:
                self.trees.refresh(c.popen.pid for c in self._running())
                next_refresh = time.monotonic() + TREE_REFRESH_S

    def _budget_tick(self) -> bool:
        """Act on the budget clock; True when the node must stop now."""
        assert self.budget is not None
        due = self.budget.due()
        if due == Due.REQUEST:
            try:
                self.budget.request(self.attempt.stop_request_path)
            except OSError as exc:  # the stop before the cap still comes
                self.say(f"budget: cannot write {self.attempt.stop_request_path.name}: {exc}")
            self.say(
                f"budget: {self.budget.spent()}: asking the trainer to save a checkpoint and stop"
            )
        elif due == Due.STOP:
            self.say(
                f"budget: {self.budget.spent()}: the trainer has not stopped; stopping "
                "every process before the cap (its newest complete checkpoint stays the last)"
            )
            return True
        return False

    def _budget_ended(self) -> bool:
        return self.budget is not None and self.budget.ended_run and not self.signals

    def _report_budget(self) -> None:
        assert self.budget is not None
        self.budget.refresh()
        checkpoint = self.budget.measured.checkpoint or "none"
        self.say(
            f"stopped: budget, {self.budget.spent()}; newest complete checkpoint: {checkpoint}"
        )

    def _check_exits(self, ready: bool, gated: bool) -> int | None:
        """Act on children that exited; return the node's code when it is done."""
        exited = [c for c in self.children.values() if c.code is None and c.reaped_at]
        # the first to exit is the one to blame (a trainer fails *because* its server died)
        for child in sorted(exited, key=lambda c: c.reaped_at or 0.0):
            child.popen.wait()
            child.code, child.ended_at = exit_code(child.popen.returncode), time.time()
            name = child.proc.name
            child.info.update(ended_at=child.ended_at, exit_code=child.code)
            self._write_node()
            if child.code != 0:
                when = (
                    " before it was ready" if gated and not ready and child.proc.ready_url else ""
                )
                raise Failure(name, f"exited with code {child.code}{when}", child.code)
            if child.proc.role != Role.TRAINER and self._trainers_pending():
                why = "before it was ready" if gated and not ready else "while the trainer runs"
                raise Failure(name, f"exited with code 0 {why}", 1)
            self.say(f"{name} exited with code 0")
        if not self._trainers_pending() and (
            any(p.role == Role.TRAINER for p in self.procs) or not self._running()
        ):
            if any(c.code is None for c in self.children.values()):
                self.say("training finished: stopping the inference server")
            return 0
        return None

    def _tell_peers(self, code: int) -> None:
        """A trainer node of a multi-node plan tells the serve-only nodes how it ended."""
        if self.plan.nodes < 2 or not any(p.role == Role.TRAINER for p in self.procs):
            return
        missed = announce(self.plan, self.ctx, code)
        if missed:
            self.say(f"could not tell node(s) {missed} that training ended (already gone?)")

    def _trainers_pending(self) -> bool:
        return any(
            p.role == Role.TRAINER
            and (p.name not in self.children or self.children[p.name].code is None)
            for p in self.procs
        )

    def _running(self) -> list[Child]:
        return [c for c in self.children.values() if c.code is None]

    def _resolve_programs(self) -> dict[str, str]:
        programs = {}
        for p in self.procs:
            env = {**os.environ, **p.env}
            found = resolve_program(p.argv[0], env, self.workdir) if p.argv else None
            if found is None:
                where = (
                    "" if os.sep in (p.argv or ("",))[0] else " (looked beside python and on PATH)"
                )
                raise Failure(
                    p.name,
                    f"command {p.argv[0] if p.argv else ''!r} not found{where}",
                    EXIT_NOT_FOUND,
                )
            programs[p.name] = found
        return programs

    def _run_setup(self, step: SetupStep) -> int:
        """Run one setup step to its end, logged like a process; 0, or the code to stop with
        (a failed step is a Failure naming it; a signal stops it and the node)."""
        name = f"setup-{step.name}"
        env = {**os.environ, **step.env, SUPERVISOR_ID_VAR: self.marker_value}
        program = resolve_program(step.argv[0], env, self.workdir)
        if program is None:
            raise Failure(name, f"command {step.argv[0]!r} not found", EXIT_NOT_FOUND)
        read_fd, write_fd = make_pipe()
        try:
            popen = spawn([program, *step.argv[1:]], env, write_fd, self.workdir)
        finally:
            os.close(write_fd)
        thread = relay(
            name, read_fd, self.attempt.log_path(name), self.redactor, self.console, self.say
        )
        self.trees.add(popen.pid)
        self.say(f"setup {step.name}: {shlex.join(step.argv)}")
        started = time.monotonic()
        while popen.poll() is None:
            if self.signals:
                terminate([popen.pid], self.trees, grace=self.grace)
                popen.wait()
                thread.join(timeout=5)
                return 128 + self.signals[0]
            time.sleep(TICK_S)
        thread.join(timeout=5)
        code = exit_code(popen.returncode)
        if code:  # reported with the last lines of its log, like any process
            raise Failure(name, f"exited with code {code}", code)
        self.say(f"setup {step.name} done in {time.monotonic() - started:.1f} s")
        return 0

    def _start(self, p: Process, program: str) -> None:
        env = {**os.environ, **p.env, SUPERVISOR_ID_VAR: self.marker_value}
        argv = [program, *p.argv[1:]]
        read_fd, write_fd = make_pipe()
        try:
            popen = spawn(argv, env, write_fd, self.workdir)
        except OSError as exc:
            os.close(read_fd)
            raise Failure(p.name, f"could not start: {exc}", EXIT_NOT_FOUND) from None
        finally:
            os.close(write_fd)
        log = self.attempt.log_path(p.name)
        thread = relay(p.name, read_fd, log, self.redactor, self.console, self.say)
        child = Child(p, popen, thread, time.time())
        child.info = {
            "role": p.role,
            "pid": popen.pid,
            "pgid": popen.pid,
            "create_time": create_time(popen.pid),
            "argv": self.redactor.obj(list(p.argv)),
            "started_at": child.started_at,
            "log": str(self.attempt.log_path(p.name).relative_to(self.attempt.path)),
        }
        self.children[p.name] = child
        self.trees.add(popen.pid)
        threading.Thread(target=self._reap, args=(child,), daemon=True).start()
        self._write_node()
        self.say(f"started {p.name} (pid {popen.pid}): {shlex.join(p.argv)}")

    def _reap(self, child: Child) -> None:
        child.popen.wait()
        child.reaped_at = time.monotonic()
        self.wake.set()

    def _on_ready(self) -> None:
        assert self.watch is not None and self.watch.ready_at is not None
        took = self.watch.ready_at - self.started_at
        self.record.update(ready_at=self.watch.ready_at, ready_s=round(took, 3))
        self.say(f"inference ready after {took:.1f} s")

    # -- stopping --------------------------------------------------------------------------
    def _stop_all(self, *, for_signal: bool) -> None:
        if self.watch is not None:
            self.watch.stop()
        running = self._running()
        if running:
            self.say(f"stopping {', '.join(c.proc.name for c in running)}")
        allowed = 1 if for_signal else 0  # one more signal than the one being served: kill
        took = terminate(
            [c.popen.pid for c in self.children.values()],
            self.trees,
            self.grace,
            hurry=lambda: len(self.signals) > allowed,
        )
        for child in self.children.values():
            with contextlib.suppress(Exception):
                child.popen.wait(timeout=5)
            if child.code is None:
                child.code, child.ended_at = exit_code(child.popen.returncode), time.time()
                child.info.update(ended_at=child.ended_at, exit_code=child.code, stopped=True)
        if running:
            self.say(f"stopped in {took:.1f} s")

    def _join_relays(self) -> None:
        # a descendant we could not kill may hold a pipe open: do not wait for it forever
        deadline = time.monotonic() + 2.0
        for child in self.children.values():
            child.relay.join(max(0.0, deadline - time.monotonic()))

    def _report(self, failure: Failure) -> None:
        path = self.attempt.log_path(failure.name) if failure.name else None
        if path is None or not path.exists():
            self.say(
                f"{failure.name or 'node'} failed: {failure.reason} (exit code {failure.code})"
            )
            return
        lines = tail_lines(path, TAIL_LINES)
        rel = path.relative_to(self.attempt.path)
        # the program's own one-line verdict (`vft.train: error: ...`) before the launcher's
        # traceback noise that follows it (torchrun's ChildFailedError block)
        own = verdict(path)
        if own is not None:
            failure.reason = f"{own} ({failure.reason})"
            self.say(f"{failure.name} failed: {own}")
        self.say(
            f"{failure.name} failed: {failure.reason}; "
            + (f"last {len(lines)} lines of {rel}:" if lines else f"{rel} is empty")
        )
        for line in lines:
            self.say(f"  | {line}")

    # -- records and messages --------------------------------------------------------------
    def say(self, text: str) -> None:
        text = self.redactor.text(text)
        stamp = time.strftime("%H:%M:%S")
        with contextlib.suppress(ValueError, OSError):  # closed, or the disk is full
            self._events.write(f"{stamp} {text}\n")
        if self.console is not None:
            self.console.say(text)

    def _record_end(self, code: int, failure: Failure | None) -> None:
        stopped = bool(self.signals) and failure is None
        status = (
            RunStatus.SUCCEEDED if code == 0 else RunStatus.STOPPED if stopped else RunStatus.FAILED
        )
        if failure is None and code == 0 and self._budget_ended():
            assert self.budget is not None
            status = RunStatus.STOPPED_BUDGET
            fields = {"stop_reason": "budget", "budget": self.budget.record()}
            self.record.data.update(fields)  # written with the node's end below
            if self.ctx.rank == 0:  # before the status: a reader of it finds these too
                with contextlib.suppress(OSError):
                    self.attempt.update(**fields)
        failed = None
        if failure is not None:
            failed = {"process": failure.name, "reason": failure.reason, "exit_code": failure.code}
        self.record.end(status, code, failed)

    def _write_node(self) -> None:
        self.record.processes = {name: c.info for name, c in self.children.items()}
        self.record.write()
