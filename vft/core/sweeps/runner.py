"""Runs a sweep's points, at most `max_parallel` at once, each an ordinary detached run.

The caller gives `start(point, devices)`, which launches one point the way `vft run
--detach` does and returns its attempt and backend; from there the runner only asks the
backend, as `vft status` and `vft stop` do: `status(attempt)` until the point finishes,
`stop(attempt)` for every running point when the sweep is told to stop (or fails), all
points at once, so no point outlives the sweep that started it.

A point whose attempt failed and was restarted (`resources.restarts`: its run.json names
the new attempt, `restarted_as`) is followed into the new attempt.

Locally, a GPU point gets GPUs of its own: `devices` is the slice of the machine's GPUs
it is given (as CUDA_VISIBLE_DEVICES), and a point waits until that many are free.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vft.core.errors import UserError
from vft.core.runs import FINISHED, Attempt, RunStatus
from vft.core.sweeps.record import SweepRecord
from vft.core.sweeps.rewards import Rewards, reward_cell, rewards

if TYPE_CHECKING:
    from vft.core.plugins.backend import Backend

TICK_S = 0.1


@dataclass(frozen=True)
class Started:
    attempt: Attempt
    backend: Backend


@dataclass
class _Running:
    started: Started
    devices: tuple[str, ...]
    since: float
    ended_once: bool = False  # seen failed once: a restart may be on its way


Start = Callable[[str, tuple[str, ...]], Started]


class SweepRun:
    """One sweep's points through to their end; `record` is rewritten at every change."""

    def __init__(
        self,
        record: SweepRecord,
        output_dir: str,
        start: Start,
        *,
        max_parallel: int,
        gpus: Mapping[str, int],
        devices: list[str] | None,
        stop_requested: Callable[[], bool],
        say: Callable[[str], None],
        poll_s: float = 1.0,
        reward_of: Callable[[Started], Rewards] | None = None,
    ) -> None:
        self.record, self.output_dir, self.start = record, output_dir, start
        self.max_parallel, self.gpus = max(1, max_parallel), dict(gpus)
        self.free = None if devices is None else list(devices)  # None: no local GPU slices
        self.stop_requested, self.say, self.poll_s = stop_requested, say, poll_s
        # a finished point's reward: read in its folder here, unless the caller reads it
        # through the point's backend (a remote folder)
        self.reward_of = reward_of or (lambda started: rewards(started.attempt.path))
        self.running: dict[str, _Running] = {}
        self.pending = [p.name for p in record.points]

    def run(self) -> SweepRecord:
        """Every point launched and watched to its end, or all stopped; returns the record."""
        self.record.write(self.output_dir)
        try:
            while (self.pending or self.running) and not self.stop_requested():
                self._start_what_fits()
                self._collect_finished()
                self._wait(self.poll_s)
        finally:  # Ctrl-C, SIGTERM, or a bug here: nothing the sweep started keeps running
            interrupted = bool(self.pending or self.running)
            self._stop_all()
            for name in self.pending:
                point = self.record.point(name)
                point.status = "not started"
            self.pending = []
            statuses = [p.status for p in self.record.points]
            if interrupted:
                self.record.status = "interrupted"
            elif all(s == RunStatus.SUCCEEDED for s in statuses):
                self.record.status = "succeeded"
            else:
                self.record.status = "failed"
            self.record.ended_at = time.time()
            self.record.write(self.output_dir)
        return self.record

    # -- starting ----------------------------------------------------------------------------
    def _start_what_fits(self) -> None:
        while self.pending and len(self.running) < self.max_parallel:
            name = self.pending[0]
            need = self.gpus.get(name, 0)
            if self.free is not None and need > len(self.free):
                return  # in grid order: it waits for GPUs to be freed by a running point
            self.pending.pop(0)
            devices: tuple[str, ...] = ()
            if self.free is not None and need:
                devices, self.free = tuple(self.free[:need]), self.free[need:]
            point = self.record.point(name)
            try:
                started = self.start(name, devices)
            except UserError as exc:  # a preflight refusal, a port, an install that failed
                self._release(devices)
                point.status, point.note = "not launched", exc.line()
                self.say(f"{self._tag(name)} not launched: {exc.line()}")
                self.record.write(self.output_dir)
                continue
            self.running[name] = _Running(started, devices, time.time())
            point.attempt, point.status = started.attempt.number, RunStatus.RUNNING
            self.record.write(self.output_dir)
            self.say(f"{self._tag(name)} started: {name} attempt-{started.attempt.number}")
            if self.stop_requested():
                return

    def _release(self, devices: tuple[str, ...]) -> None:
        if self.free is not None and devices:
            self.free = sorted([*self.free, *devices], key=_device_order)

    # -- watching ----------------------------------------------------------------------------
    def _collect_finished(self) -> None:
        for name, run in list(self.running.items()):
            state = self._status(run.started)
            status = str(state.get("status", "unknown"))
            if status == RunStatus.ORPHANED:  # its supervisor died: end what is left of it
                run.started.backend.stop(run.started.attempt)
                state = self._status(run.started)
                status = str(state.get("status", "unknown"))
            if status not in FINISHED:
                continue
            if status not in (RunStatus.SUCCEEDED, RunStatus.STOPPED):
                after = _restarted_as(run.started.attempt)
                if after is not None:  # a transient failure: the run goes on in a new attempt
                    self._follow(name, run, after)
                    continue
                if not run.ended_once:  # the restart's attempt is made just after the failure
                    run.ended_once = True
                    continue
            del self.running[name]
            self._release(run.devices)
            self._finish(name, run, state)

    def _follow(self, name: str, run: _Running, attempt: Attempt) -> None:
        run.started = Started(attempt, run.started.backend)
        run.ended_once = False
        self.record.point(name).attempt = attempt.number
        self.record.write(self.output_dir)
        self.say(f"{self._tag(name)} restarted as attempt-{attempt.number}")

    def _finish(
        self, name: str, run: _Running, state: Mapping[str, Any], *, reward: bool = True
    ) -> None:
        """The point's end in the record, and a line; `reward`: with its rewards (not while
        the sweep stops: a remote point's are a fetch each, and the summary shows them)."""
        point = self.record.point(name)
        point.status = str(state.get("status", "unknown"))
        code = state.get("exit_code")
        point.exit_code = code if isinstance(code, int) else None
        failed = state.get("failed")
        if isinstance(failed, dict) and failed.get("reason"):
            point.note = f"{failed.get('process')}: {failed.get('reason')}"
        self.record.write(self.output_dir)
        got = self.reward_of(run.started) if reward else None
        shown = ""
        if got is not None and got.final is not None:
            shown = f"; reward {reward_cell(got.final)} (best {reward_cell(got.best)})"
        took = time.time() - run.since
        self.say(f"{self._tag(name)} {point.status} in {took:.0f} s{shown}")

    def _status(self, started: Started) -> dict[str, Any]:
        try:
            return dict(started.backend.status(started.attempt))
        except Exception as exc:  # an unreadable record or an unreachable service: ask again
            return {"status": f"unknown ({type(exc).__name__})"}

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stop_requested():
            time.sleep(TICK_S)

    # -- stopping ----------------------------------------------------------------------------
    def _stop_all(self) -> None:
        """`vft stop` of every running point, all at once (each waits its own grace)."""
        if not self.running:
            return
        names = ", ".join(self.running)
        self.say(f"stopping {len(self.running)} running point(s): {names}")
        runs = dict(self.running)
        with ThreadPoolExecutor(max_workers=len(runs)) as pool:
            done = {name: pool.submit(_stop, run.started) for name, run in runs.items()}
        for name, run in runs.items():
            error = done[name].exception()
            state = self._status(run.started)
            if error is not None:
                state = {**state, "failed": {"process": "vft stop", "reason": str(error)}}
            self._finish(name, run, state, reward=False)
        self.running.clear()

    def _tag(self, name: str) -> str:
        names = [p.name for p in self.record.points]
        return f"[{names.index(name) + 1}/{len(names)}] {name}"


def _restarted_as(attempt: Attempt) -> Attempt | None:
    """The attempt a restart of `attempt` started (its run.json's `restarted_as`)."""
    try:
        number = attempt.record().get("restarted_as")
    except UserError:  # unreadable: no restart to follow
        return None
    if not isinstance(number, int) or isinstance(number, bool) or number <= attempt.number:
        return None
    return Attempt(attempt.path.parent / f"attempt-{number}")


def _stop(started: Started) -> None:
    started.backend.stop(started.attempt)


def _device_order(device: str) -> tuple[int, str]:
    return (int(device), "") if device.isdigit() else (1 << 30, device)
