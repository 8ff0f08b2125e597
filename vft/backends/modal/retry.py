"""The Modal Function, with restarts: Modal starts a call again, and the call resumes.

Modal starts a call again on the same input in two cases: its container was preempted
(Modal does that by itself), or the call raised and the function's `retries` allow
another try. `run_node_restarting` makes the second case mean "a transient failure":
a failure `classify` calls transient raises (Modal tries again), any other returns its
exit code (Modal records the result and stops). Either way, a call that finds its
attempt folder already used on the volume is a restart: it runs as a NEW attempt
(`<name>/attempt-N+1`) whose plan resumes from the newest complete checkpoint of the
attempts before it, up to `resources.restarts` times (counted here, so a preemption
restart counts too). Every attempt's run.json names its launch (`launched_as`: the folder
the call was launched into and Modal's call id), so that neither the chain here nor
`vft status` on the launching machine (remote.py) takes another launch of the same name
for this one; a restart is committed at once, so the launcher sees it while it runs.

`run_try` takes the volume as a folder and `commit` as a callable, so it runs unchanged
on a laptop against a temporary folder (that is how it is tested).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vft.backends.modal.container import RunFailed, RunNode, run_in_volume, say
from vft.backends.restarts import (
    Restart,
    allowed_restarts,
    attempt_status,
    attempt_transience,
    budget_left,
    elapsed_s,
    newest_checkpoint,
    requested_restarts,
    resumed,
)
from vft.core.node.verdict import Transience
from vft.core.plan import Plan
from vft.core.runs.folders import Attempt, RunFolder, RunStatus, UnreadableRecord

#: run.json's field naming the launch an attempt on the volume belongs to (`launch_key`)
LAUNCHED_AS = "launched_as"
PREEMPTED = "the container was preempted or lost (Modal started the call again)"
SIGTERM_BY_MODAL = "the container was stopped by Modal (a preemption)"


@dataclass(frozen=True)
class Try:
    """What this call of the function runs: which attempt folder, which plan, and, on a
    restart, which restart; `refused`: restarts are used up, end with this code."""

    run_dir: str
    plan: Plan
    used: int  # restarts before this try
    restart: Restart | None = None
    refused: int | None = None


def this_try(
    plan: Plan,
    outputs: Path,
    run_dir: str,
    allowed: int,
    rank: int = 0,
    launched: Mapping[str, Any] | None = None,
) -> Try:
    """The first call runs `run_dir`; a later call of the same input (its run.json is on
    the volume) runs the next attempt, from the newest checkpoint of the chain so far.
    `launched` (`launch_key`) goes into the run.json of the attempt that runs, so that the
    launcher finds this launch's newest attempt among others of the same name."""
    launched = dict(launched or launch_key(run_dir))
    first = Attempt(outputs / run_dir)
    if not first.record_path.exists():
        if rank == 0:
            first.update(launched_as=launched)
        return Try(run_dir, plan, 0)
    chain = _chain(first, launched)
    used = len(chain) - 1
    previous = chain[-1]
    if attempt_status(previous) == "succeeded":  # preempted during its last commit: nothing to redo
        say(f"{previous.path.name} already succeeded; nothing to restart")
        return Try(run_dir, plan, used, refused=0)
    verdict = modal_transience(previous, rank)
    reason = verdict.reason if verdict.transient else PREEMPTED
    if used >= allowed:
        code = _exit_code(previous)
        say(f"{reason}: not restarted, restarts used up ({used} of {allowed})")
        return Try(run_dir, plan, used, refused=code)
    left = budget_left(plan, elapsed_s(chain))  # every call gets the recipe's whole budget
    if left is None:
        say(f"{reason}: not restarted, its budget is spent")
        return Try(run_dir, plan, used, refused=_exit_code(previous))
    plan = left
    checkpoint = newest_checkpoint([a.path for a in chain])
    restart = Restart(used + 1, allowed, reason, checkpoint, previous.number)
    folder = RunFolder(first.path.parent)
    number = max(a.number for a in folder.attempts()) + 1
    new_dir = str(Path(run_dir).parent / f"attempt-{number}")
    if rank == 0:  # node 0 owns run.json, as in run_in_volume
        Attempt(outputs / new_dir).update(restart=restart.record(), launched_as=launched)
        previous.update(restarted_as=number)
    say(restart.line(number))
    return Try(new_dir, resumed(plan, checkpoint), used, restart)


def launch_key(run_dir: str, call_id: str | None = None) -> dict[str, Any]:
    """What names one launch on the volume: the folder it was launched into (every retry
    of the call gets the same one) and Modal's function call id, where known."""
    return {"run_dir": run_dir, "function_call_id": call_id}


def same_launch(record: Mapping[str, Any], run_dir: str, call_id: str | None) -> bool:
    """Whether an attempt's run.json on the volume belongs to the launch into `run_dir`
    (with call `call_id`): a launch of the same name from elsewhere never does."""
    launched = record.get(LAUNCHED_AS)
    if not isinstance(launched, Mapping) or launched.get("run_dir") != run_dir:
        return False
    theirs = launched.get("function_call_id")
    return not (call_id and theirs) or theirs == call_id


def _chain(first: Attempt, launched: Mapping[str, Any]) -> list[Attempt]:
    """`first` and the restarts that followed it, in order: only attempts whose run.json
    names this launch (`launched`), so other launches of the same name on the volume are
    never part of it."""
    chain = [first]
    by_previous: dict[int, Attempt] = {}
    for attempt in RunFolder(first.path.parent).attempts():
        try:
            record = attempt.record()
        except UnreadableRecord:
            continue
        restart = record.get("restart") or {}
        mine = same_launch(record, launched["run_dir"], launched.get("function_call_id"))
        if mine and isinstance(restart.get("previous_attempt"), int):
            by_previous.setdefault(restart["previous_attempt"], attempt)
    while chain[-1].number in by_previous and len(chain) <= 1000:
        chain.append(by_previous[chain[-1].number])
    return chain


def _exit_code(attempt: Attempt) -> int:
    """The code a try that may not run ends with: the last attempt's, 1 when it has none."""
    try:
        code = attempt.record().get("exit_code")
    except UnreadableRecord:
        code = None
    return code if isinstance(code, int) and code else 1


def run_try(
    plan: Plan,
    outputs: Path,
    run_dir: str,
    rank: int,
    addresses: tuple[str, ...],
    *,
    allowed: int,
    commit: Callable[[], None],
    run_node: RunNode | None = None,
    call_id: str | None = None,
    **committer: Any,
) -> int:
    """One call of the function: this try's attempt, run; raises RunFailed (Modal tries
    again) only for a transient failure with restarts left. `call_id`: Modal's function
    call id, the same for every retry of the call."""
    current = this_try(plan, outputs, run_dir, allowed, rank, launch_key(run_dir, call_id))
    if current.refused is not None:
        return current.refused
    if current.restart is not None and rank == 0:
        _commit_now(commit, "restart")  # `vft status` sees the new attempt at once
    code = run_in_volume(
        current.plan,
        outputs,
        current.run_dir,
        rank,
        addresses,
        commit=commit,
        run_node=run_node,
        **committer,
    )
    if code == 0:
        return 0
    verdict = modal_transience(Attempt(outputs / current.run_dir), rank)
    if verdict.transient and current.used < allowed:
        raise RunFailed(code, f"{plan.name} node {rank}: {verdict.reason}; Modal starts it again")
    if allowed:
        say(f"not restarted: {verdict.reason}")
    return code


def _commit_now(commit: Callable[[], None], why: str) -> None:
    """Commit the volume; a refusal is a line in the log (the run's own commits follow)."""
    try:
        commit()
    except Exception as exc:
        say(f"volume commit ({why}) failed: {type(exc).__name__}: {exc}")


def modal_transience(attempt: Attempt, rank: int = 0) -> Transience:
    """`classify`, and one more case inside a container: a plain "stopped" (a SIGTERM the
    run did not ask for) comes from Modal, which stops a container so when it preempts it
    (raised, the call is tried again) or when its app is stopped (then nothing is tried
    again, whatever the call does). A budget stop names itself (`stop_reason`)."""
    verdict = attempt_transience(attempt, rank)
    if verdict.transient:
        return verdict
    try:
        record = attempt.record() if not rank else attempt.node(rank)
    except UnreadableRecord:
        return verdict
    if record.get("status") == RunStatus.STOPPED and not record.get("stop_reason"):
        return Transience(True, SIGTERM_BY_MODAL)
    return verdict


def run_node_restarting(plan_json: str, run_dir: str, verbose: bool = False) -> int:
    """The Modal Function: one call per run, broadcast to every container of a cluster.
    `verbose` (`vft run -v`): every process's whole output on the console, not the quiet one."""
    import modal

    if verbose:
        os.environ["VFT_VERBOSE"] = "1"

    from vft.backends.modal.container import cluster_context
    from vft.backends.modal.options import ModalOptions
    from vft.backends.modal.spec import DEFAULT_RESTARTS, OUTPUTS

    plan = Plan.from_json(plan_json)
    rank, addresses = cluster_context(plan.nodes)
    volume = modal.Volume.from_name(ModalOptions.model_validate(plan.backend_options).volume)
    allowed = allowed_restarts(requested_restarts(plan), DEFAULT_RESTARTS)
    return run_try(
        plan,
        Path(OUTPUTS),
        run_dir,
        rank,
        addresses,
        allowed=allowed,
        commit=volume.commit,
        call_id=modal.current_function_call_id(),
    )
