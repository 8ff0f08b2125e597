"""Restarts after a transient failure: a NEW attempt that resumes from the newest complete
checkpoint of the attempts before it.

`resources.restarts` bounds how many. Whether a failure may restart is
`vft.core.node.verdict.classify` (preemption, a lost node, an NCCL timeout: yes; an error
in the run, a refusal, a stop: never). The local backend restarts by launching again
(`run_restarting`); the Modal container picks the same checkpoint when Modal starts it
again (vft/backends/modal/retry.py). The restarted attempt's plan.json names the
checkpoint (`trainer.training.resume_from_checkpoint`) and its run.json says why
(`restart`); the attempt before it records `restarted_as`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vft.core.node.verdict import Transience, classify, log_end
from vft.core.plan import Plan
from vft.core.runs.folders import Attempt, UnreadableRecord, run_folder
from vft.train.checkpoints import CHECKPOINT, checkpoints_dir, is_complete

PLAN_LINE = "{n} (from the latest checkpoint; transient failures only)"


def allowed_restarts(requested: int | None, default: int) -> int:
    """`resources.restarts`, or the backend's default when the recipe leaves it unset."""
    return default if requested is None else requested


def requested_restarts(plan: Plan) -> int | None:
    """The plan's `run.restarts` (the recipe's `resources.restarts`; None: unset, or a
    plan from before plans carried it)."""
    return plan.run.restarts


def plan_row(requested: int | None, default: int) -> tuple[str, str]:
    """The `restarts` row `vft plan` shows for a backend."""
    n = allowed_restarts(requested, default)
    text = PLAN_LINE.format(n=n)
    if requested is None:
        text += "; the backend's default (resources.restarts sets it)"
    return "restarts", text


def attempt_transience(attempt: Attempt, rank: int | None = None) -> Transience:
    """`classify` on what the attempt's run.json (or node `rank`'s own record, on a node
    that is not node 0) and the failed process's log say."""
    try:
        record = attempt.record() if not rank else attempt.node(rank)
    except UnreadableRecord as exc:
        return Transience(False, f"its record is unreadable ({exc.reason})")
    failed = record.get("failed") or {}
    process = failed.get("process")
    text = log_end(attempt.log_path(process)) if isinstance(process, str) else ""
    reason = record.get("stop_reason")
    stop_reason = reason if isinstance(reason, str) else None
    return classify(record.get("status"), failed, record.get("exit_code"), text, stop_reason)


def newest_checkpoint(attempt_dirs: Sequence[Path]) -> Path | None:
    """The complete checkpoint with the highest step among these attempt folders (the
    later attempt on a tie); a checkpoint still being written is never chosen."""
    best: tuple[int, int, Path] | None = None
    for order, folder in enumerate(attempt_dirs):
        for ckpt in checkpoints_dir(folder).glob("checkpoint-*"):
            match = CHECKPOINT.match(ckpt.name)
            if match and ckpt.is_dir() and is_complete(ckpt):
                key = (int(match.group(1)), order, ckpt)
                if best is None or key[:2] > best[:2]:
                    best = key
    return best[2] if best else None


def resumed(plan: Plan, checkpoint: Path | None) -> Plan:
    """`plan` resuming from `checkpoint`; unchanged without one (it starts where it did)."""
    if checkpoint is None:
        return plan
    training = replace(plan.trainer.training, resume_from_checkpoint=str(checkpoint))
    return replace(plan, trainer=replace(plan.trainer, training=training))


def elapsed_s(attempts: Sequence[Attempt]) -> float:
    """Seconds these attempts ran (started_at to ended_at): what a budget has paid for."""
    total = 0.0
    for attempt in attempts:
        try:
            record = attempt.record()
        except UnreadableRecord:
            continue
        start, end = record.get("started_at"), record.get("ended_at")
        if isinstance(start, int | float) and isinstance(end, int | float) and end > start:
            total += end - start
    return total


def budget_left(plan: Plan, spent_s: float) -> Plan | None:
    """`plan` with its caps (run.max_hours, run.max_usd) lowered by what `spent_s` seconds
    cost, so that restarts together stay within the recipe's budget; None when nothing is
    left. A plan without a cap is returned as it is."""
    run = plan.run
    if run.max_hours is None and run.max_usd is None:
        return plan
    hours = spent_s / 3600
    max_hours = None if run.max_hours is None else run.max_hours - hours
    max_usd = None if run.max_usd is None else run.max_usd - hours * plan.cost.usd_per_hour
    if any(left is not None and left <= 0 for left in (max_hours, max_usd)):
        return None
    return replace(plan, run=replace(run, max_hours=max_hours, max_usd=max_usd))


@dataclass(frozen=True)
class Restart:
    """One restart: which (1-based) of how many, why, and from which checkpoint."""

    number: int
    allowed: int
    reason: str
    checkpoint: Path | None
    previous: int  # the attempt it restarts

    def record(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "allowed": self.allowed,
            "reason": self.reason,
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "previous_attempt": self.previous,
            "at": time.time(),
        }

    def line(self, attempt: int) -> str:
        start = f"from {self.checkpoint.name}" if self.checkpoint else "from the start"
        return (
            f"{self.reason}: restarting {start} as attempt-{attempt} "
            f"(restart {self.number} of {self.allowed})"
        )


def start_restart(
    chain: Sequence[Attempt],
    plan: Plan,
    backend: str,
    restart_reason: str,
    used: int,
    allowed: int,
    record: Mapping[str, Any] | None = None,
) -> tuple[Attempt, Plan, Restart]:
    """Make the next attempt folder for a restart of `chain[-1]`; its plan resumes from
    the newest complete checkpoint of every attempt of the chain. `record`: more fields
    for its run.json (a detached run's agent pid, so `vft stop` finds it at once)."""
    checkpoint = newest_checkpoint([a.path for a in chain])
    restart = Restart(used + 1, allowed, restart_reason, checkpoint, chain[-1].number)
    new_plan = resumed(plan, checkpoint)
    attempt = run_folder(plan.run.output_dir, plan.name).new_attempt(new_plan, backend)
    attempt.update(restart=restart.record(), **(record or {}))
    chain[-1].update(restarted_as=attempt.number)
    return attempt, new_plan, restart


def run_restarting(
    launch_once: Callable[[Plan, Attempt], int],
    plan: Plan,
    attempt: Attempt,
    backend: str,
    allowed: int,
    note: Callable[[str], None] = print,
    record: Mapping[str, Any] | None = None,
) -> tuple[Attempt, Plan, int]:
    """Launch `attempt`; while it fails of a transient fault and restarts are left, launch
    a new attempt from the newest checkpoint. Returns the last attempt, its plan and its
    exit code (the run's). A stop, a success or an error in the run ends it at once."""
    chain = [attempt]
    code = launch_once(plan, attempt)
    while code != 0 and allowed > 0:
        verdict = attempt_transience(chain[-1])
        used = len(chain) - 1
        if not verdict.transient:
            if attempt_status(chain[-1]) == "failed":  # a stop or a success needs no word
                note(f"not restarted: {verdict.reason}")
            break
        if used >= allowed:
            note(f"{verdict.reason}: not restarted, restarts used up ({used} of {allowed})")
            break
        left = budget_left(plan, elapsed_s(chain[-1:]))  # `plan` has the earlier ones' off
        if left is None:
            note(f"{verdict.reason}: not restarted, its budget is spent")
            break
        attempt, plan, restart = start_restart(
            chain, left, backend, verdict.reason, used, allowed, record
        )
        chain.append(attempt)
        note(restart.line(attempt.number))
        if attempt_status(attempt) != "created":  # `vft stop` came between the two attempts
            return attempt, plan, STOPPED_BEFORE_START
        code = launch_once(plan, attempt)
    return chain[-1], plan, code


#: the exit code of a restart stopped before it started (as after a SIGTERM)
STOPPED_BEFORE_START = 143


def attempt_status(attempt: Attempt) -> object:
    """The status run.json records; None when it cannot be read."""
    try:
        return attempt.record().get("status")
    except UnreadableRecord:
        return None


def last_attempt(attempt: Attempt) -> Attempt:
    """The attempt that ended a chain of restarts begun by `attempt` (`restarted_as`)."""
    seen = {attempt.number}
    while True:
        try:
            number = attempt.record().get("restarted_as")
        except UnreadableRecord:
            return attempt
        if not isinstance(number, int) or number in seen:
            return attempt
        seen.add(number)
        attempt = Attempt(attempt.path.parent / f"attempt-{number}")


def restart_note(record: Mapping[str, Any]) -> str | None:
    """One line for `vft status` / `vft runs` about an attempt's restarts, from its
    run.json: why it was started, or which attempt took over from it; None otherwise.
    A restart made elsewhere (Modal's retries make it on the volume) names where it runs
    (`where`)."""
    parts = []
    restart = record.get("restart")
    if isinstance(restart, Mapping):
        checkpoint = restart.get("checkpoint")
        start = f"from {Path(checkpoint).name}" if checkpoint else "from the start"
        where = restart.get("where")
        parts.append(
            (f"now {where}: " if isinstance(where, str) and where else "")
            + f"restart {restart.get('number')} of {restart.get('allowed')} "
            f"(after attempt-{restart.get('previous_attempt')}: {restart.get('reason')}), {start}"
        )
    if isinstance(record.get("restarted_as"), int):
        parts.append(f"restarted as attempt-{record['restarted_as']}")
    return "; ".join(parts) or None
