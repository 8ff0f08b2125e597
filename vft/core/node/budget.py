"""The budget clock of a node: stop the run, a checkpoint first, before it spends its cap.

The spend is the node's elapsed time (from its supervisor's start) at the plan's price,
`cost.usd_per_hour`; the cap is `run.max_usd` at that price or `run.max_hours`, whichever
comes first (vft/core/planning/budget.py). Two moments:

- **request** at cap - margin: the supervisor writes `stop-request.json` into the run
  folder; the trainer (vft/train/budget_stop.py) finishes its step, saves a checkpoint
  and exits 0. The margin is what that takes, measured on this run: SPREAD x (the
  longest of the last steps, from metrics.jsonl, + the last checkpoint's save, from its
  marker's `save_s`) + EXIT_S, plus the stop's own time (below). Until a step and a
  save are measured it is at least DEFAULT_MARGIN_S, or a quarter of the cap when that
  is smaller (short caps).
- **stop** at cap - grace - TEARDOWN_S: a trainer that has not stopped by then (a step
  or a save longer than measured, a custom script that ignores the request) is stopped
  with every process (SIGTERM, the grace, SIGKILL), so that the run is gone by the cap;
  its last complete checkpoint is the newest one written before.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from vft.core.plan import Plan
from vft.core.planning.budget import budget_seconds
from vft.core.runs.folders import CHECKPOINT_MARKER, write_json_atomic
from vft.core.runs.metrics import METRICS_FILE, parse_rows, train_rows

DEFAULT_MARGIN_S = 300.0  # before a step and a checkpoint are measured
EXIT_S = 5.0  # the trainer's exit after its save (a process tree's teardown)
TEARDOWN_S = 2.0  # after the stop's grace: the supervisor's own joins and records
SPREAD = 1.5  # a step or a save may take longer than the last ones measured
STEPS_MEASURED = 5  # the step time is the longest of the last few
LOOK_EVERY_S = 2.0  # how often the run folder is read for new measurements
METRICS_TAIL_BYTES = 8192


class Due(Enum):
    REQUEST = "request"  # ask the trainer to save and stop
    STOP = "stop"  # stop every process now


@dataclass
class Measured:
    step_s: float | None = None
    save_s: float | None = None
    checkpoint: str | None = None  # the newest complete checkpoint, relative to the run


class BudgetClock:
    """When to ask the trainer to stop, and when to stop it; None of `for_plan` = no cap."""

    def __init__(
        self, plan: Plan, run_dir: Path, limit_s: float, by: str, grace_s: float, start: float
    ) -> None:
        self.plan, self.run_dir = plan, Path(run_dir)
        self.limit_s, self.by, self.grace_s, self.start = limit_s, by, grace_s, start
        self.usd_per_hour = plan.cost.usd_per_hour if plan.cost.known else None
        self.measured = Measured()
        self.requested_at: float | None = None  # seconds into the run
        self.forced_at: float | None = None
        self.margin_at_request: float | None = None
        self._next_look = 0.0

    @classmethod
    def for_plan(
        cls, plan: Plan, run_dir: Path, grace_s: float, start: float | None = None
    ) -> BudgetClock | None:
        found = budget_seconds(plan)
        if found is None:
            return None
        start = time.monotonic() if start is None else start
        return cls(plan, run_dir, found[0], found[1], grace_s, start)

    # -- the clock -------------------------------------------------------------------------
    def elapsed(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.start

    def margin(self) -> float:
        m = self.measured
        margin = (
            self.grace_s + TEARDOWN_S + EXIT_S + SPREAD * ((m.step_s or 0.0) + (m.save_s or 0.0))
        )
        if m.step_s is None or m.save_s is None:
            margin = max(margin, min(DEFAULT_MARGIN_S, self.limit_s / 4))
        return margin

    def due(self, now: float | None = None) -> Due | None:
        """What is due at `now` (monotonic): each of REQUEST and STOP once, in that order."""
        elapsed = self.elapsed(now)
        if self.forced_at is None and elapsed >= self.limit_s - self.grace_s - TEARDOWN_S:
            self.forced_at = elapsed
            return Due.STOP
        if self.requested_at is None:
            self._look(now)
            margin = self.margin()
            if elapsed >= self.limit_s - margin:
                self.requested_at, self.margin_at_request = elapsed, margin
                return Due.REQUEST
        return None

    @property
    def ended_run(self) -> bool:
        """The budget is why the run ends (it asked the trainer to stop, or stopped it)."""
        return self.requested_at is not None or self.forced_at is not None

    # -- what the supervisor writes and says -----------------------------------------------
    def request(self, path: Path) -> None:
        """Ask the trainer to stop: the file it looks for at each step's end."""
        write_json_atomic(path, {"reason": "budget", "at": time.time(), **self.record()})

    def spent(self, now: float | None = None) -> str:
        """`$0.70 of $0.72 (36.00 $/h, 70 s)` or `70 s of 72 s (max_hours)`."""
        elapsed = self.elapsed(now)
        if self.by == "max_usd" and self.usd_per_hour is not None:
            cap = self.plan.run.max_usd or 0.0
            return (
                f"${elapsed * self.usd_per_hour / 3600:.2f} of ${cap:.2f} spent "
                f"(${self.usd_per_hour:.2f}/h, {_clock(elapsed)})"
            )
        return f"{_clock(elapsed)} of {_clock(self.limit_s)} (resources.max_hours)"

    def cap(self) -> str:
        """`$0.75 at $36.00/h (75 s)` or `75 s (resources.max_hours)`."""
        if self.by == "max_usd" and self.usd_per_hour is not None:
            return (
                f"${self.plan.run.max_usd or 0.0:.2f} at ${self.usd_per_hour:.2f}/h "
                f"({_clock(self.limit_s)})"
            )
        return f"{_clock(self.limit_s)} (resources.max_hours)"

    def record(self, now: float | None = None) -> dict[str, Any]:
        """The `budget` entry of run.json and the node's record."""
        elapsed = self.elapsed(now)
        out: dict[str, Any] = {
            "cap": self.by,
            "limit_s": round(self.limit_s, 1),
            "elapsed_s": round(elapsed, 1),
            "margin_s": round(
                self.margin() if self.margin_at_request is None else self.margin_at_request, 1
            ),
        }
        if self.usd_per_hour is not None:
            out["usd_per_hour"] = self.usd_per_hour
            out["spent_usd"] = round(elapsed * self.usd_per_hour / 3600, 4)
        if self.plan.run.max_usd is not None:
            out["max_usd"] = self.plan.run.max_usd
        if self.plan.run.max_hours is not None:
            out["max_hours"] = self.plan.run.max_hours
        if self.requested_at is not None:
            out["requested_at_s"] = round(self.requested_at, 1)
        if self.forced_at is not None:
            out["forced_at_s"] = round(self.forced_at, 1)
        if self.measured.checkpoint:
            out["checkpoint"] = self.measured.checkpoint
        return out

    def refresh(self) -> None:
        """Read the run folder now (the newest checkpoint, for the end's record)."""
        self._next_look = 0.0
        self._look(None)

    # -- measurements ----------------------------------------------------------------------
    def _look(self, now: float | None) -> None:
        now = time.monotonic() if now is None else now
        if now < self._next_look:
            return
        self._next_look = now + LOOK_EVERY_S
        step_s = last_step_seconds(self.run_dir / METRICS_FILE)
        if step_s is not None:
            self.measured.step_s = step_s
        found = newest_marker(self.run_dir / "checkpoints")
        if found is not None:
            name, save_s = found
            self.measured.checkpoint = f"checkpoints/{name}"
            if save_s is not None:
                self.measured.save_s = save_s


def last_step_seconds(path: Path) -> float | None:
    """The longest step among the last STEPS_MEASURED training rows of metrics.jsonl (its
    rows' `time`), or None before two rows."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - METRICS_TAIL_BYTES))
            tail = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    rows = [
        (row["step"], float(row["time"]))
        for row in reversed(train_rows(parse_rows("\n".join(tail))))
        if isinstance(row.get("time"), int | float)
    ][: STEPS_MEASURED + 1]
    spans = [
        (later[1] - earlier[1]) / (later[0] - earlier[0])
        for later, earlier in itertools.pairwise(rows)
        if later[0] > earlier[0]
    ]
    return max(0.0, *spans) if spans else None


def newest_marker(checkpoints: Path) -> tuple[str, float | None] | None:
    """(name, save seconds) of the newest checkpoint holding the completion marker."""
    best: tuple[int, str, Path] | None = None
    with contextlib.suppress(OSError):
        for marker in checkpoints.glob(f"checkpoint-*/{CHECKPOINT_MARKER}"):
            name = marker.parent.name
            step = name.removeprefix("checkpoint-")
            if step.isdigit() and (best is None or int(step) > best[0]):
                best = (int(step), name, marker)
    if best is None:
        return None
    try:
        data = json.loads(best[2].read_text())
    except (OSError, ValueError):
        return best[1], None
    save_s = data.get("save_s") if isinstance(data, dict) else None
    return best[1], float(save_s) if isinstance(save_s, int | float) else None


def _clock(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"
