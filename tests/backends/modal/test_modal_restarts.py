"""Restarts on Modal, at the boundary this side can reach.

Modal itself is not reached (no account, no network to Modal): Modal's part is to call
the function again on the same input, after a preemption or when the call raised and
its `retries` allow it. What is tested here is everything else: the `retries` the real
`modal.Function` is built with, the plan's restarts row, and the function's body
(`retry.run_try`) called twice on the same input against a folder standing in for the
volume, with the real supervisor and a fixture trainer that checkpoints and is killed
by SIGKILL: the second call is a new attempt resuming from the newest complete
checkpoint, as a restarted container would run it.
"""

from __future__ import annotations

import json
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from vft.backends.modal.container import RunFailed
from vft.backends.modal.retry import PREEMPTED, run_try
from vft.backends.modal.spec import DEFAULT_RESTARTS, describe_rows, function_spec
from vft.core.runs.folders import Attempt
from vft.launch import prepare

ROOT = Path(__file__).resolve().parents[3]
SMOKE = ROOT / "examples" / "recipes" / "smoke.toml"
KILLED = 128 + signal.SIGKILL


@pytest.fixture(scope="module")
def smoke_plan():
    return prepare(SMOKE, (), "modal", check_paths=False).plan


def test_the_function_is_built_with_modal_retries(smoke_plan) -> None:
    from vft.backends.modal.app import build_app

    spec = function_spec(smoke_plan)
    assert spec.restarts == DEFAULT_RESTARTS == 2  # resources.restarts unset
    _, function = build_app(spec)
    assert function.info().max_retries == 2
    raw = function._raw_f_  # private: the only offline view of what is called
    assert (raw.__module__, raw.__name__) == ("vft.backends.modal.retry", "run_node_restarting")
    _, never = build_app(replace(spec, restarts=0))
    assert not never.info().max_retries


def test_the_plan_says_how_many_restarts(smoke_plan) -> None:
    rows = dict(describe_rows(smoke_plan, function_spec(smoke_plan)))
    assert rows["restarts"].startswith("2 (from the latest checkpoint; transient failures only)")


def _plan(proc, make_plan, tmp_path: Path, *args: object):
    trainer = proc("trainer", "ckpt_trainer.py", "--run-dir", "{{run_dir}}", *args)
    return make_plan(trainer, name="rs", output_dir=str(tmp_path / "local"))


def _call(plan, volume: Path, allowed: int, commits: list[str]) -> int:
    """One call of the Modal function's body, on `volume` as the mounted Volume."""
    return run_try(
        plan,
        volume,
        "rs/attempt-1",
        0,
        ("127.0.0.1",),
        allowed=allowed,
        commit=lambda: commits.append("commit"),
        poll_s=0.05,
    )


def test_a_restarted_container_resumes_from_the_newest_checkpoint(
    proc, make_plan, tmp_path: Path
) -> None:
    plan = _plan(proc, make_plan, tmp_path, "--steps", 4, "--die-at", 3)
    volume, commits = tmp_path / "volume", []
    with pytest.raises(RunFailed) as raised:  # transient: raised, so Modal tries again
        _call(plan, volume, 2, commits)
    assert raised.value.exit_code == KILLED and "trainer was killed (SIGKILL)" in str(raised.value)
    first = Attempt(volume / "rs" / "attempt-1")
    ckpt = first.path / "checkpoints" / "checkpoint-2"
    assert first.record()["status"] == "failed" and commits  # committed on the way out

    assert _call(plan, volume, 2, commits) == 0  # Modal's second call of the same input
    second = Attempt(volume / "rs" / "attempt-2")
    assert second.plan().trainer.training.resume_from_checkpoint == str(ckpt)
    restart = second.record()["restart"]
    assert restart["reason"] == "trainer was killed (SIGKILL)"
    assert (restart["number"], restart["allowed"], restart["checkpoint"]) == (1, 2, str(ckpt))
    assert first.record()["restarted_as"] == 2 and second.record()["status"] == "succeeded"
    state = second.path / "checkpoints" / "checkpoint-4" / "trainer_state.json"
    assert json.loads(state.read_text())["global_step"] == 4


def test_an_error_in_the_run_returns_so_modal_never_retries_it(
    proc, make_plan, tmp_path: Path
) -> None:
    plan = _plan(proc, make_plan, tmp_path, "--die-at", 1, "--die-how", "error")
    assert _call(plan, tmp_path / "volume", 2, []) == 1  # returned, not raised
    assert [p.name for p in (tmp_path / "volume" / "rs").iterdir()] == ["attempt-1"]


def test_a_lost_container_restarts_and_a_used_up_one_does_not_run(
    proc, make_plan, tmp_path: Path
) -> None:
    """A container that went away without a word (its record still says "running", as
    last committed): Modal calls again by itself, whatever `retries` says; restarts are
    still counted here."""
    plan = _plan(proc, make_plan, tmp_path, "--steps", 2)
    volume = tmp_path / "volume"
    first = Attempt(volume / "rs" / "attempt-1")
    first.update(name="rs", status="running")
    (first.path / "checkpoints" / "checkpoint-1").mkdir(parents=True)  # no trainer_state.json
    assert _call(plan, volume, 0, []) == 1  # restarts = 0: not run again
    assert not (volume / "rs" / "attempt-2").exists()

    assert _call(plan, volume, 1, []) == 0
    second = Attempt(volume / "rs" / "attempt-2")
    assert second.record()["restart"]["reason"] == PREEMPTED
    assert second.record()["restart"]["checkpoint"] is None  # incomplete: from the start
    assert second.plan().trainer.training.resume_from_checkpoint is None
    assert _call(plan, volume, 1, []) == 0  # a third call: restarts used up, nothing runs
    assert not (volume / "rs" / "attempt-3").exists()


def test_modals_sigterm_is_a_preemption_and_the_next_call_resumes(
    proc, make_plan, tmp_path: Path
) -> None:
    """Modal preempts by SIGTERM to the container: here the node entry runs as its own
    process (`python -m vft.core.node`) and gets that SIGTERM once checkpoint-2 is
    complete; its supervisor stops in order ("stopped"), the call raises so that Modal
    tries again, and the next call resumes from checkpoint-2."""
    import subprocess
    import sys
    import threading
    import time

    from vft.core.node.entry import node_argv
    from vft.train.checkpoints import is_complete

    volume = tmp_path / "volume"

    def node_process(_plan, attempt, _ctx) -> int:
        node = subprocess.Popen(node_argv(str(attempt.path), python=sys.executable, echo=False))
        ckpt = attempt.path / "checkpoints" / "checkpoint-2"

        def preempt() -> None:
            while node.poll() is None and not is_complete(ckpt):
                time.sleep(0.02)
            node.send_signal(signal.SIGTERM)

        threading.Thread(target=preempt, daemon=True).start()
        return node.wait(timeout=60)

    def call(plan, run_node=None) -> int:
        return run_try(
            plan,
            volume,
            "rs/attempt-1",
            0,
            ("127.0.0.1",),
            allowed=1,
            commit=lambda: None,
            run_node=run_node,
            poll_s=0.05,
        )

    long = _plan(proc, make_plan, tmp_path, "--steps", 200, "--step-s", 0.05)
    with pytest.raises(RunFailed) as raised:
        call(long, node_process)
    assert raised.value.exit_code == 128 + signal.SIGTERM
    assert Attempt(volume / "rs" / "attempt-1").record()["status"] == "stopped"
    # Modal calls again with the same input; a shorter run here only to keep the test fast
    assert call(_plan(proc, make_plan, tmp_path, "--steps", 4)) == 0
    restart = Attempt(volume / "rs" / "attempt-2").record()["restart"]
    assert restart["reason"] == "the container was stopped by Modal (a preemption)"
    assert restart["checkpoint"].endswith("attempt-1/checkpoints/checkpoint-2")
