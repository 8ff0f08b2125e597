"""How vft reads what Modal answers: a call's outcome, the volume's listing, its files.

Modal's servers are the boundary: the stand-ins (tests/backends/modal/fakes.py) are a
FunctionCall whose `get` returns or raises what Modal's client returns or raises (the
real exception classes), and a Volume whose `listdir`/`read_file` return Modal's own
`FileEntry` objects and byte chunks. Everything vft does with those answers runs for real.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from modal.exception import FunctionTimeoutError, OutputExpiredError

from tests.backends.modal.fakes import Call, Volume
from vft.backends.modal import outputs, remote
from vft.backends.modal.container import RunFailed
from vft.backends.modal.launch import free_run_dir
from vft.core.errors import UserError
from vft.core.runs.folders import Attempt


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (0, ("succeeded", 0, None)),
        (
            RunFailed(3, "gsm8k node 0 exited with code 3"),
            ("failed", 3, "gsm8k node 0 exited with code 3"),
        ),
        (
            FunctionTimeoutError("timeout"),
            ("failed", 124, "the container reached backend.modal.timeout_hours"),
        ),
        (OutputExpiredError(), ("failed", None, "Modal no longer holds this run's result")),
        (TimeoutError(), None),
    ],
)
def test_call_outcomes(outcome: object, expected: object) -> None:
    call = Call(outcome)
    assert remote.call_result(call) == expected
    assert call.timeouts == [0.0]


def test_wait_polls_until_the_call_ends() -> None:
    class Slow(Call):
        def get(self, timeout: float | None = None) -> object:
            self.timeouts.append(timeout)
            if len(self.timeouts) < 3:
                raise TimeoutError()
            return 0

    call = Slow(None)
    assert remote.wait(call) == ("succeeded", 0, None)
    assert call.timeouts == [60.0, 60.0, 60.0]


def test_a_new_attempt_never_writes_into_one_on_the_volume() -> None:
    vol = Volume({"exp/attempt-1/run.json": b"{}", "exp/attempt-4/run.json": b"{}"})
    assert free_run_dir(vol, "exp", 2) == "exp/attempt-2"
    assert free_run_dir(vol, "exp", 4) == "exp/attempt-5"  # taken: past the highest
    assert free_run_dir(vol, "new", 1) == "new/attempt-1"  # nothing there yet


def modal_attempt(tmp_path: Path) -> Attempt:
    attempt = Attempt(tmp_path / "outputs" / "exp" / "attempt-2")
    attempt.update(
        backend="modal",
        status="running",
        modal={"volume": "vft-outputs", "run_dir": "exp/attempt-2", "app_id": "ap-1"},
    )
    return attempt


def test_list_and_download_keep_relative_paths(tmp_path: Path, monkeypatch) -> None:
    vol = Volume(
        {
            "exp/attempt-2/run.json": b'{"status": "succeeded"}',
            "exp/attempt-2/checkpoints/checkpoint-2/model.safetensors": b"0123456789",
            "exp/attempt-1/run.json": b"other attempt",
        },
        dirs=("exp/attempt-2/checkpoints",),
    )
    monkeypatch.setattr(outputs, "_volume", lambda record: vol)
    attempt = modal_attempt(tmp_path)
    assert outputs.list_outputs(attempt) == [
        ("checkpoints/checkpoint-2/model.safetensors", 10),
        ("run.json", 23),
    ]
    dest = tmp_path / "got"
    written = outputs.get_outputs(attempt, dest, prefix="checkpoints/")
    assert written == [dest / "checkpoints/checkpoint-2/model.safetensors"]
    assert written[0].read_bytes() == b"0123456789"
    assert not list(dest.rglob(".*.part"))
    with pytest.raises(UserError, match="no files under vft-outputs:/exp/attempt-2/nope"):
        outputs.get_outputs(attempt, dest, prefix="nope")


def test_a_run_not_launched_on_modal_is_one_line(tmp_path: Path) -> None:
    attempt = Attempt(tmp_path / "exp" / "attempt-1")
    attempt.update(backend="modal", status="launching")
    with pytest.raises(UserError, match="was not launched on Modal"):
        outputs.list_outputs(attempt)


def test_finished_runs_are_answered_from_run_json(tmp_path: Path) -> None:
    attempt = modal_attempt(tmp_path)
    attempt.update(status="succeeded", exit_code=0)
    assert remote.status(attempt)["status"] == "succeeded"  # no Modal call needed


def test_one_process_log_from_the_volume_follows_until_the_run_ends() -> None:
    record = {"volume": "vft-outputs", "run_dir": "exp/attempt-2"}
    path = "exp/attempt-2/logs/trainer.log"
    vol = Volume({path: b"step 1\nstep 2\npart"})
    looks: list[int] = []

    def ended() -> bool:  # each look, the run writes more; the third look sees it finished
        looks.append(1)
        vol.files[path] += [b"ial\nstep 3\n", b"step 4\n", b"done\n"][len(looks) - 1]
        return len(looks) == 3

    lines = list(remote.read_log(vol, record, "trainer", follow=True, ended=ended, poll_s=0))
    assert lines == ["step 1", "step 2", "partial", "step 3", "step 4", "done"]
    assert list(remote.read_log(vol, record, "trainer", follow=False, ended=ended)) == lines
    with pytest.raises(UserError, match="no log for process 'vllm'"):
        list(remote.read_log(vol, record, "vllm", follow=False, ended=ended))


def test_a_run_that_stopped_at_its_budget_says_so_not_succeeded(
    tmp_path: Path, monkeypatch
) -> None:
    """The call ends with 0 either way; run.json on the volume (Modal's Volume is the
    stand-in) tells a budget stop from a success."""
    import json

    import modal

    budget = {"max_usd": 5.0, "spent_usd": 4.6}
    on_volume = {"status": "stopped: budget", "stop_reason": "budget", "budget": budget}
    vol = Volume({"exp/attempt-2/run.json": json.dumps(on_volume).encode()})
    monkeypatch.setattr(modal.Volume, "from_name", staticmethod(lambda name: vol))
    monkeypatch.setattr(modal.FunctionCall, "from_id", staticmethod(lambda call_id: Call(0)))
    attempt = modal_attempt(tmp_path)
    attempt.update(modal={**attempt.record()["modal"], "function_call_id": "fc-1"})
    state = remote.status(attempt)
    assert (state["status"], state["stop_reason"], state["budget"]) == (
        "stopped: budget",
        "budget",
        budget,
    )
    assert attempt.record()["status"] == "stopped: budget"

    vol.files["exp/attempt-2/run.json"] = b'{"status": "succeeded"}'
    other = Attempt(tmp_path / "outputs" / "exp" / "attempt-3")
    other.update(**{**attempt.record(), "status": "running", "attempt": 3})
    other.update(stop_reason=None, budget=None)
    assert remote.status(other)["status"] == "succeeded"


def test_following_a_log_moves_to_the_attempt_a_restart_made() -> None:
    """A restart by Modal's retries is a new attempt folder on the volume (the stand-in
    Volume holds both): the old log is read to its end, then the new one is followed."""
    record = {"volume": "vft-outputs", "run_dir": "exp/attempt-1"}
    old, new = "exp/attempt-1/logs/trainer.log", "exp/attempt-2/logs/trainer.log"
    vol = Volume({old: b"step 1\nstep 2\nkill"})
    where = ["exp/attempt-1"]
    looks: list[int] = []

    def ended() -> bool:
        looks.append(1)
        if len(looks) == 1:  # the container died; its last commit, then the restart's
            vol.files[old] += b"ed\n"
            vol.files[new] = b"resuming from checkpoint-2\n"
            where[0] = "exp/attempt-2"
        else:
            vol.files[new] += b"step 3\n"
        return len(looks) == 2

    lines = list(
        remote.read_log(
            vol, record, "trainer", follow=True, ended=ended, poll_s=0, current_dir=lambda: where[0]
        )
    )
    assert lines == [
        "step 1",
        "step 2",
        "killed",
        "vft: restarted as exp/attempt-2 on volume vft-outputs; its trainer log:",
        "resuming from checkpoint-2",
        "step 3",
    ]
