"""Restarts after a transient failure: the classification table, the checkpoint chosen,
and the local restart loop around real supervisors, real subprocesses and real signals
(a fixture trainer that checkpoints like vft.train and dies of SIGKILL or of an error).

The real GRPO run that is killed from outside is tests/train/test_restart_run.py.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from vft.backends.local.backend import LocalBackend
from vft.backends.restarts import (
    allowed_restarts,
    attempt_transience,
    budget_left,
    elapsed_s,
    last_attempt,
    newest_checkpoint,
    plan_row,
    resumed,
    run_restarting,
)
from vft.core.node.verdict import classify
from vft.core.runs.folders import Attempt

KILLED, TERMED = 128 + signal.SIGKILL, 128 + signal.SIGTERM

TORCHRUN_KILLED = """\
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
Root Cause (first observed failure):
[0]:
  exitcode  : -9 (pid: 4242)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 4242
"""
ACCELERATE_KILLED = (
    "subprocess.CalledProcessError: Command '['python', '-m', 'vft.train']' "
    "died with <Signals.SIGKILL: 9>."
)
NCCL_TIMEOUT = (
    "[rank1]:[E ProcessGroupNCCL.cpp:616] [Rank 1] Watchdog caught collective operation "
    "timeout: WorkNCCL(SeqNum=41, OpType=ALLREDUCE, Timeout(ms)=600000) ran for 600123 ms"
)
PEER_LOST = (
    "node1:77:88 [0] NCCL WARN NET/Socket : remote process exited or there was a network error"
)
USER_BUG = 'Traceback (most recent call last):\n  File "train.py", line 3\nValueError: bad reward\n'


def failed(process: str, code: int, reason: str = "") -> dict:
    return {"process": process, "exit_code": code, "reason": reason or f"exited with code {code}"}


# (status, failed, exit code, log text) -> transient?, words in the reason
CASES = [
    ("failed", failed("trainer", KILLED), KILLED, "", True, "trainer was killed (SIGKILL)"),
    ("failed", failed("trainer", TERMED), TERMED, "", True, "terminated (SIGTERM)"),
    ("failed", failed("inference", KILLED), KILLED, "", True, "inference was killed"),  # OOM-kill
    ("failed", failed("trainer", 1), 1, TORCHRUN_KILLED, True, "trainer worker was killed"),
    ("failed", failed("trainer", 1), 1, ACCELERATE_KILLED, True, "worker was killed (SIGKILL)"),
    ("failed", failed("trainer", 1), 1, NCCL_TIMEOUT, True, "an NCCL timeout"),
    ("failed", failed("trainer", 1), 1, PEER_LOST, True, "a lost node"),
    ("lost", None, None, "", True, "supervisor was lost"),
    # never: an error in the run, a refusal, a stop, a success
    ("failed", failed("trainer", 1), 1, USER_BUG, False, "an error in the run"),
    ("failed", failed("trainer", 2), 2, ACCELERATE_KILLED, False, "a refusal (exit code 2"),
    ("failed", failed(None, 2), 2, "", False, "a refusal"),  # type: ignore[arg-type]
    ("failed", failed("trainer", 127), 127, "", False, "exit code 127"),
    ("failed", failed("inference", 124), 124, "", False, "exit code 124"),
    ("failed", failed("trainer", 128 + signal.SIGSEGV), 139, "", False, "exit code 139"),
    ("failed", failed("trainer", 128 + signal.SIGABRT), 134, "", False, "exit code 134"),
    ("stopped", failed("trainer", TERMED), 130, "", False, "stopped"),  # Ctrl-C, vft stop
    ("stopped: budget", None, 143, NCCL_TIMEOUT, False, "budget"),
    ("interrupted", None, 130, "", False, "interrupted"),
    ("succeeded", None, 0, "", False, "succeeded"),
    ("orphaned", None, None, "", False, "not a failure"),  # its processes still run
    ("running", None, None, "", False, "not a failure"),
]


@pytest.mark.parametrize(("status", "fail", "code", "log", "transient", "words"), CASES)
def test_classify_table(status, fail, code, log, transient, words) -> None:
    verdict = classify(status, fail, code, log)
    assert verdict.transient is transient
    assert words in verdict.reason


def test_a_run_that_stopped_itself_never_restarts() -> None:
    """A budget stop, however it ended (a trainer killed at the end of the grace)."""
    verdict = classify("failed", failed("trainer", KILLED), KILLED, "", stop_reason="budget")
    assert not verdict.transient and "budget" in verdict.reason


def test_allowed_and_the_plan_row() -> None:
    assert allowed_restarts(None, 2) == 2 and allowed_restarts(0, 2) == 0
    assert allowed_restarts(5, 0) == 5
    assert plan_row(1, 0) == ("restarts", "1 (from the latest checkpoint; transient failures only)")
    _, text = plan_row(None, 2)
    assert text.startswith("2 (from the latest checkpoint; transient failures only)")
    assert "default" in text


def _ckpt(attempt: Path, step: int, *, complete: bool = True) -> Path:
    path = attempt / "checkpoints" / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def test_newest_complete_checkpoint_of_the_chain(tmp_path: Path) -> None:
    one, two = tmp_path / "attempt-1", tmp_path / "attempt-2"
    _ckpt(one, 2)
    four = _ckpt(one, 4)
    _ckpt(one, 6, complete=False)  # being written when the machine went away
    _ckpt(two, 10, complete=False)
    assert newest_checkpoint([one, two]) == four
    again = _ckpt(two, 4)
    assert newest_checkpoint([one, two]) == again  # a tie: the later attempt
    assert newest_checkpoint([tmp_path / "attempt-9"]) is None


def _trainer_plan(proc, make_plan, output_dir: Path, *args: object, name: str = "rs"):
    trainer = proc("trainer", "ckpt_trainer.py", "--run-dir", "{{run_dir}}", *args)
    return make_plan(trainer, name=name, output_dir=str(output_dir))


def _steps(attempt: Attempt) -> list[int]:
    lines = (attempt.path / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


def _run(plan, attempt: Attempt, allowed: int) -> tuple[Attempt, int, list[str]]:
    said: list[str] = []

    def once(p, a):  # the local backend in the foreground, as `vft run` does
        return LocalBackend().launch(p, a, detach=False)

    last, _, code = run_restarting(once, plan, attempt, "local", allowed, said.append)
    return last, code, said


def test_a_killed_trainer_restarts_from_its_checkpoint_as_a_new_attempt(
    proc, make_plan, new_attempt, output_dir
) -> None:
    plan = _trainer_plan(proc, make_plan, output_dir, "--steps", 4, "--die-at", 3)
    first = new_attempt(plan)
    last, code, said = _run(plan, first, allowed=2)

    assert code == 0 and last.number == 2
    ckpt2 = first.path / "checkpoints" / "checkpoint-2"
    assert said == [
        "trainer was killed (SIGKILL): restarting from checkpoint-2 as attempt-2 (restart 1 of 2)"
    ]
    assert first.record()["status"] == "failed" and first.record()["exit_code"] == KILLED
    assert first.record()["restarted_as"] == 2
    restart = last.record()["restart"]
    assert restart["number"] == 1 and restart["allowed"] == 2 and restart["previous_attempt"] == 1
    assert restart["reason"] == "trainer was killed (SIGKILL)"
    assert restart["checkpoint"] == str(ckpt2)
    assert last.plan().trainer.training.resume_from_checkpoint == str(ckpt2)
    assert last.record()["status"] == "succeeded"
    # the first try got to step 3 (checkpoint-2 saved); the restart did steps 3 and 4
    assert _steps(first) == [1, 2, 3] and _steps(last) == [3, 4]
    state = json.loads(
        (last.path / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text()
    )
    assert state["global_step"] == 4


def test_an_error_in_the_run_is_never_restarted(proc, make_plan, new_attempt, output_dir) -> None:
    plan = _trainer_plan(proc, make_plan, output_dir, "--die-at", 3, "--die-how", "error")
    first = new_attempt(plan)
    last, code, said = _run(plan, first, allowed=3)
    assert (last, code) == (first, 1)
    assert [a.name for a in first.path.parent.iterdir() if a.name.startswith("attempt-")] == [
        "attempt-1"
    ]
    assert said == [
        "not restarted: trainer failed with exit code 1: an error in the run, not a transient fault"
    ]
    assert "restarted_as" not in first.record()


def test_restarts_are_bounded_and_the_run_exits_with_the_last_code(
    proc, make_plan, new_attempt, output_dir
) -> None:
    plan = _trainer_plan(
        proc, make_plan, output_dir, "--steps", 6, "--die-at", 2, "--always", "--die-how", "SIGTERM"
    )
    first = new_attempt(plan)
    last, code, said = _run(plan, first, allowed=1)
    assert last.number == 2 and code == TERMED
    assert said[0].endswith("restarting from checkpoint-2 as attempt-2 (restart 1 of 1)")
    assert said[1] == "trainer was terminated (SIGTERM): not restarted, restarts used up (1 of 1)"
    assert attempt_transience(last).transient


def test_no_restarts_allowed_means_one_attempt(proc, make_plan, new_attempt, output_dir) -> None:
    plan = _trainer_plan(proc, make_plan, output_dir, "--die-at", 1)
    first = new_attempt(plan)
    last, code, said = _run(plan, first, allowed=0)
    assert (last, code, said) == (first, KILLED, [])


def test_a_restart_gets_only_the_budget_left(make_plan, tmp_path: Path) -> None:
    """Restarts share the recipe's cap: each attempt's run time comes off it."""
    from dataclasses import replace

    plan = make_plan(name="p")
    assert budget_left(plan, 10_000.0) is plan  # no cap, nothing to lower
    capped = replace(plan, run=replace(plan.run, max_hours=1.0, max_usd=10.0))
    capped = replace(capped, cost=replace(capped.cost, usd_per_hour=4.0))
    half = budget_left(capped, 1800.0)
    assert half is not None
    assert half.run.max_hours == pytest.approx(0.5) and half.run.max_usd == pytest.approx(8.0)
    assert budget_left(capped, 3600.0) is None  # the hour is spent
    pricey = replace(capped, cost=replace(capped.cost, usd_per_hour=40.0))
    assert budget_left(pricey, 900.0) is None  # $10 is spent in a quarter of an hour

    ran = Attempt(tmp_path / "p" / "attempt-1")
    ran.update(started_at=100.0, ended_at=400.0)
    broken = Attempt(tmp_path / "p" / "attempt-2")
    broken.update(started_at=500.0)  # never ended: nothing counted
    assert elapsed_s([ran, broken]) == 300.0


def test_a_restart_whose_budget_is_spent_is_not_made(
    proc, make_plan, new_attempt, output_dir
) -> None:
    """A real killed trainer under a 1 h cap; its run.json then says it ran for 2 h (the
    only thing simulated: a test cannot wait an hour), so no restart is made."""
    from dataclasses import replace

    plan = _trainer_plan(proc, make_plan, output_dir, "--steps", 4, "--die-at", 3)
    plan = replace(plan, run=replace(plan.run, max_hours=1.0))
    first = new_attempt(plan)
    said: list[str] = []

    def once(p, a):
        code = LocalBackend().launch(p, a, detach=False)
        a.update(started_at=a.record()["ended_at"] - 7200)
        return code

    last, _, code = run_restarting(once, plan, first, "local", 2, said.append)
    assert (last, code) == (first, KILLED)
    assert said == ["trainer was killed (SIGKILL): not restarted, its budget is spent"]


def test_resumed_plan_names_the_checkpoint_and_nothing_else(make_plan, tmp_path: Path) -> None:
    plan = make_plan(name="p")
    assert resumed(plan, None) is plan
    again = resumed(plan, tmp_path / "checkpoint-2")
    assert again.trainer.training.resume_from_checkpoint == str(tmp_path / "checkpoint-2")
    assert again.processes == plan.processes and again.run == plan.run


def test_the_plan_shows_the_recipes_restarts() -> None:
    """`vft plan` says how many restarts, from the plan's run.restarts (Plan JSON 1.3)."""
    from dataclasses import replace

    from vft.backends.modal.spec import describe_rows, function_spec
    from vft.launch import prepare

    smoke = Path(__file__).resolve().parents[2] / "examples" / "recipes" / "smoke.toml"
    local = prepare(smoke, ("resources.restarts=3",), "local", check_paths=False)
    assert local.backend.describe(local.plan) == [
        ("restarts", "3 (from the latest checkpoint; transient failures only)")
    ]
    modal = prepare(smoke, ("resources.restarts=0",), "modal", check_paths=False).plan
    assert function_spec(modal).restarts == 0
    assert dict(describe_rows(modal, function_spec(modal)))["restarts"].startswith("0 (")
    unset = replace(modal, run=replace(modal.run, restarts=None))
    assert function_spec(unset).restarts == 2


def _wait(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _status(attempt: Attempt) -> str | None:
    return LocalBackend().status(attempt).get("status")


def test_the_local_backend_restarts_in_the_foreground(
    proc, make_plan, new_attempt, output_dir
) -> None:
    plan = _trainer_plan(proc, make_plan, output_dir, "--steps", 4, "--die-at", 3)
    first = new_attempt(plan)
    assert LocalBackend().launch(plan, first, detach=False, restarts=1) == 0
    last = last_attempt(first)
    assert last.number == 2 and last.record()["restart"]["checkpoint"].endswith("checkpoint-2")
    assert _steps(last) == [3, 4]


def test_a_detached_run_restarts_and_vft_stop_ends_it_for_good(
    proc, make_plan, new_attempt, output_dir
) -> None:
    from vft.core.node.identity import same

    plan = _trainer_plan(
        proc, make_plan, output_dir, "--steps", 400, "--step-s", 0.05, "--die-at", 2
    )
    first = new_attempt(plan)
    assert LocalBackend().launch(plan, first, detach=True, restarts=2) == 0
    _wait(lambda: (first.path.parent / "attempt-2" / "metrics.jsonl").is_file(), what="restart")
    second = last_attempt(first)
    assert second.number == 2 and _status(second) == "running"
    agent = first.record()["supervisor_pid"]
    assert second.record()["supervisor_pid"] == agent  # the same agent runs every attempt
    assert "restarting from checkpoint-2 as attempt-2 (restart 1 of 2)" in (
        first.log_path("vft").read_text()
    )
    LocalBackend().stop(second)  # `vft stop`: SIGTERM to the agent's supervisor
    _wait(lambda: not same(agent, first.record()["supervisor_create_time"]), what="agent gone")
    assert _status(second) == "stopped"
    assert not (first.path.parent / "attempt-3").exists()


def test_the_restart_note_for_status_and_runs() -> None:
    from vft.backends.restarts import restart_note

    restart = {
        "number": 1,
        "allowed": 2,
        "reason": "trainer was killed (SIGKILL)",
        "checkpoint": "/o/smoke/attempt-1/checkpoints/checkpoint-2",
        "previous_attempt": 1,
    }
    assert restart_note({"restart": restart}) == (
        "restart 1 of 2 (after attempt-1: trainer was killed (SIGKILL)), from checkpoint-2"
    )
    assert restart_note({"restarted_as": 2}) == "restarted as attempt-2"
    assert restart_note({"status": "failed"}) is None
