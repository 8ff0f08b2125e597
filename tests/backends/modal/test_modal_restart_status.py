"""What the launching side knows of a run that Modal's retries restarted, and of a run
that failed in the container: `vft status`, `vft logs -p`, `vft outputs` and the local
run.json after the call ends.

Modal's servers are not reached. The fakes (tests/backends/modal/fakes.py) stand in for
Modal only: a Volume that this side sees as last committed by the container, a
FunctionCall, an App's lifecycle, and, for `launch`, Modal's part of a call (run the
function, run it again when it raises, up to its retries). The container's body
(`retry.run_try`, `run_node_restarting`) runs for real against a folder standing in for
the mounted volume, with the real supervisor, a fixture trainer, real run records and
the real classifier.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.backends.modal.fakes import Call, CommittedVolume
from vft.backends.modal.backend import ModalBackend
from vft.backends.modal.container import RunFailed
from vft.backends.modal.retry import launch_key, run_try, same_launch
from vft.backends.restarts import restart_note
from vft.core.plan import Plan, Process
from vft.core.runs.folders import Attempt

KILLED = 128 + signal.SIGKILL
REASON = "trainer was killed (SIGKILL)"


class FakeModal:
    """Modal's objects as `remote` reaches them: one volume, one call, one app state."""

    def __init__(self, volume: CommittedVolume) -> None:
        self.volume = volume
        self.call = Call(TimeoutError())  # running until the test says otherwise
        self.app_state = "running"

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import modal

        info = SimpleNamespace(lifecycle=lambda: None)

        def lookup(app_id: str) -> Any:
            state = SimpleNamespace(value=self.app_state)
            info.lifecycle = SimpleNamespace(state=state)
            return SimpleNamespace(info=lambda refresh=False: info)

        monkeypatch.setattr(modal.Volume, "from_name", staticmethod(lambda *a, **k: self.volume))
        monkeypatch.setattr(modal.FunctionCall, "from_id", staticmethod(lambda _id: self.call))
        monkeypatch.setattr(modal.App, "lookup", staticmethod(lookup))


def local_attempt(tmp_path: Path, run_dir: str = "rs/attempt-1") -> Attempt:
    """The local record `launch` leaves for a detached run (what `vft status` reads)."""
    attempt = Attempt(tmp_path / "local" / "rs" / "attempt-1")
    modal = {"volume": "vft-outputs", "run_dir": run_dir, "app_id": "ap-1"}
    attempt.update(
        backend="modal",
        status="running",
        detached=True,
        modal={**modal, "function_call_id": "fc-1"},
    )
    return attempt


def ckpt_plan(proc: Callable[..., Process], make_plan: Callable[..., Plan], *args: object) -> Plan:
    trainer = proc("trainer", "ckpt_trainer.py", "--run-dir", "{{run_dir}}", *args)
    return make_plan(trainer, name="rs")


def other_launch(folder: Path, number: int, **record: object) -> None:
    """An attempt of the same name made by a different launch (another machine)."""
    Attempt(folder / "rs" / f"attempt-{number}").update(
        name="rs",
        status="running",
        launched_as=launch_key(f"rs/attempt-{number}", "fc-9"),
        **record,
    )


def test_only_this_launchs_attempts_are_its_own() -> None:
    """The key the container writes, read back as the launcher reads it."""
    mine = {"launched_as": launch_key("rs/attempt-1", "fc-1")}
    assert same_launch(mine, "rs/attempt-1", "fc-1")
    assert same_launch(mine, "rs/attempt-1", None)  # a record from before the call id
    assert not same_launch(mine, "rs/attempt-1", "fc-2")  # same folder, another call
    assert not same_launch(mine, "rs/attempt-2", "fc-1")
    assert not same_launch({"restart": {"previous_attempt": 1}}, "rs/attempt-1", "fc-1")


def test_status_logs_and_outputs_follow_modals_restart_to_the_new_attempt(
    proc: Callable[..., Process],
    make_plan: Callable[..., Plan],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fakes at Modal's boundary only (volume, call, app; see the module docstring).
    The first call is SIGKILLed after checkpoint-2 and raises (Modal calls again); the
    second call is a new attempt on the volume. Another launch of the same name holds
    attempt-2 from the start and attempt-4 from mid-run: neither is taken for this one."""
    folder = tmp_path / "mounted"
    fake = FakeModal(CommittedVolume(folder))
    fake.install(monkeypatch)
    backend = ModalBackend()
    attempt = local_attempt(tmp_path)
    plan = ckpt_plan(proc, make_plan, "--steps", 4, "--die-at", 3)
    other_launch(folder, 2, restart={"number": 1, "allowed": 2, "previous_attempt": 1})

    def call(run_node: Any = None) -> int:
        return run_try(
            plan,
            folder,
            "rs/attempt-1",
            0,
            ("127.0.0.1",),
            allowed=2,
            commit=fake.volume.commit,
            run_node=run_node,
            call_id="fc-1",
            poll_s=0.05,
        )

    with pytest.raises(RunFailed):
        call()
    state = backend.status(attempt)
    assert state["status"] == "running" and "current_run_dir" not in state["modal"]
    assert restart_note(state) is None

    seen: dict[str, Any] = {}

    def restarted_node(p: Plan, a: Attempt, ctx: Any) -> int:
        """Status as the user sees it while the restart runs (its first commit only)."""
        other_launch(folder, 4)
        fake.volume.commit()
        seen["state"] = backend.status(attempt)
        from vft.core.node.entry import start_node

        return start_node(a.path, ctx.rank, ctx.addresses)

    assert call(restarted_node) == 0
    running = seen["state"]
    assert running["status"] == "running"
    assert running["modal"]["current_run_dir"] == "rs/attempt-3"
    assert running["modal"]["run_dir"] == "rs/attempt-1"  # what was launched stays
    assert restart_note(running) == (
        f"now vft-outputs:/rs/attempt-3: restart 1 of 2 (after attempt-1: {REASON}), "
        "from checkpoint-2"
    )
    assert running["restart"]["previous_attempt"] == 1

    fake.call.outcome = 0  # the retried call returned 0
    ended = backend.status(attempt)
    assert (ended["status"], ended["exit_code"]) == ("succeeded", 0)
    assert attempt.record()["modal"]["current_run_dir"] == "rs/attempt-3"
    assert "now vft-outputs:/rs/attempt-3: restart 1 of 2" in (restart_note(ended) or "")
    from vft.cli.status_view import Report, text_lines

    shown = text_lines(Report(attempt, "modal", ended), spark=False)
    assert shown[1] == f"  {restart_note(ended)}"  # `vft status` prints it under the header

    files = dict(backend.list_outputs(attempt))
    assert "checkpoints/checkpoint-4/trainer_state.json" in files
    assert "restart" in (folder / "rs/attempt-3/run.json").read_text()
    log = list(backend.logs(attempt, follow=False, process="trainer"))
    assert any("resuming from" in line and "checkpoint-2" in line for line in log)
    got = backend.get_outputs(attempt, tmp_path / "got", prefix="checkpoints/checkpoint-4/")
    assert {p.name for p in got} == {"model.bin", "trainer_state.json"}


VERDICT_TRAINER = """
import sys
print("Traceback (most recent call last):", file=sys.stderr)
print("KeyError: 'answer'", file=sys.stderr)
print("vft.train: error: KeyError: 'answer' (at reward.py:12)", file=sys.stderr, flush=True)
sys.exit(2)
"""


def test_status_of_a_detached_run_that_failed_says_why(
    make_plan: Callable[..., Plan],
    no_leftovers: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fakes at Modal's boundary only (volume, call; see the module docstring). The call
    returns the trainer's exit code 2 (not transient, not retried); `vft status` records
    and shows the reason the container wrote on the volume."""
    from vft.cli.status_view import Report, text_lines
    from vft.testing import TOKEN_VAR

    folder = tmp_path / "mounted"
    fake = FakeModal(CommittedVolume(folder))
    fake.install(monkeypatch)
    argv = (sys.executable, "-c", VERDICT_TRAINER)
    plan = make_plan(Process("trainer", "trainer", 0, (), argv, {TOKEN_VAR: no_leftovers}))
    plan = replace(plan, name="rs")
    code = run_try(
        plan, folder, "rs/attempt-1", 0, ("127.0.0.1",), allowed=2, commit=fake.volume.commit
    )
    assert code == 2
    fake.call.outcome = code  # what Modal's FunctionCall.get returns
    attempt = local_attempt(tmp_path)
    state = ModalBackend().status(attempt)
    assert attempt.record()["failed"] == state["failed"]
    assert (state["status"], state["exit_code"], state["failed"]["process"]) == (
        "failed",
        2,
        "trainer",
    )
    lines = text_lines(Report(attempt, "modal", state), spark=False)
    assert any(
        line.startswith("  failed: trainer: vft.train: error: KeyError: 'answer'") for line in lines
    )


class FakeFunction:
    """Modal's part of a spawned call: run the Function, and run it again while it
    raises, up to its retries; the result is a Call."""

    def __init__(self, retries: int) -> None:
        self.retries = retries
        self.tries = 0

    def spawn(self, plan_json: str, run_dir: str, verbose: bool) -> Call:
        from vft.backends.modal.retry import run_node_restarting

        outcome: object = None
        for _ in range(self.retries + 1):
            self.tries += 1
            try:
                outcome = run_node_restarting(plan_json, run_dir, verbose)
                break
            except RunFailed as exc:
                outcome = exc
        return Call(outcome)


def launch_on_fakes(
    plan: Plan, attempt: Attempt, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, FakeFunction]:
    """`launch.launch` as `vft run` calls it (not detached), with Modal's app, function,
    volume and call id faked; the container's workdir is the test's own folder."""
    import modal

    from vft.backends.modal import launch as launch_mod
    from vft.backends.modal import spec as spec_mod

    volume = CommittedVolume(folder)
    function = FakeFunction(retries=2)

    @contextmanager
    def run(detach: bool = False) -> Iterator[None]:
        yield

    app = SimpleNamespace(app_id="ap-1", run=run)
    monkeypatch.setattr(spec_mod, "OUTPUTS", str(folder))
    monkeypatch.setattr(modal.Volume, "from_name", staticmethod(lambda *a, **k: volume))
    monkeypatch.setattr(modal, "current_function_call_id", lambda: "fc-1")
    monkeypatch.setattr(launch_mod, "build_app", lambda spec: (app, function))
    spec = spec_mod.function_spec(plan)
    spec = replace(spec, image=replace(spec.image, workdir=str(folder.parent)))
    return launch_mod.launch(plan, attempt, detach=False, spec=spec), function


def test_a_failure_in_the_run_reaches_the_local_record_with_its_reason(
    make_plan: Callable[..., Plan],
    no_leftovers: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fakes at Modal's boundary only (app, function runner, volume; see the module
    docstring). The trainer's own error (exit code 2) is not transient: the container
    returns, Modal does not retry, and the local run.json says `failed` with the
    container's one-line reason and the process, not a bare exit code."""
    from vft.testing import TOKEN_VAR

    argv = (sys.executable, "-c", VERDICT_TRAINER)
    plan = make_plan(Process("trainer", "trainer", 0, (), argv, {TOKEN_VAR: no_leftovers}))
    plan = replace(plan, name="bad")
    attempt = Attempt(tmp_path / "local" / "bad" / "attempt-1")
    code, function = launch_on_fakes(plan, attempt, tmp_path / "mounted", monkeypatch)
    assert code == 2 and function.tries == 1
    record = attempt.record()
    assert (record["status"], record["exit_code"]) == ("failed", 2)
    failed = record["failed"]
    assert failed["process"] == "trainer" and failed["exit_code"] == 2
    assert failed["reason"].startswith("vft.train: error: KeyError: 'answer' (at reward.py:12)")
    assert "\n" not in failed["reason"]
    assert "restart" not in record and "current_run_dir" not in record["modal"]


def test_a_launch_that_modal_restarted_ends_on_its_last_attempt(
    proc: Callable[..., Process],
    make_plan: Callable[..., Plan],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fakes at Modal's boundary only (as above). A SIGKILL is transient: the function
    raises, Modal calls it again, and the local record of `vft run` (not detached) ends
    naming the attempt that succeeded and why it was started."""
    plan = replace(ckpt_plan(proc, make_plan, "--steps", 4, "--die-at", 3), name="rs")
    attempt = Attempt(tmp_path / "local" / "rs" / "attempt-1")
    code, function = launch_on_fakes(plan, attempt, tmp_path / "mounted", monkeypatch)
    assert code == 0 and function.tries == 2
    record = attempt.record()
    assert record["status"] == "succeeded"
    assert (record["modal"]["run_dir"], record["modal"]["current_run_dir"]) == (
        "rs/attempt-1",
        "rs/attempt-2",
    )
    assert record["restart"]["reason"] == REASON
    assert "failed" not in record


def test_a_failed_read_never_takes_the_launch_back_to_an_earlier_attempt() -> None:
    """Once attempt-2 is known as this launch's current one, a moment when its run.json
    cannot be read (a network error) keeps attempt-2: falling back to attempt-1 would make
    `vft logs -f` replay both attempts' logs. (The Volume is a fake: Modal's servers are
    not reached.)"""
    import json

    from tests.backends.modal.fakes import Volume
    from vft.backends.modal.remote import current

    mine = json.dumps({"launched_as": launch_key("rs/attempt-1", "fc-1")}).encode()
    files = {"rs/attempt-1/run.json": b"{}", "rs/attempt-2/run.json": mine}
    modal = {"run_dir": "rs/attempt-1", "function_call_id": "fc-1"}
    assert current(Volume(dict(files)), modal).run_dir == "rs/attempt-2"
    unreadable = Volume({**files, "rs/attempt-2/run.json": b"not json"})
    assert current(unreadable, modal).run_dir == "rs/attempt-1"  # not known yet: launched
    known = {**modal, "current_run_dir": "rs/attempt-2"}
    assert current(unreadable, known).run_dir == "rs/attempt-2"
    # a newer attempt of this launch still wins over the one known
    newer = {**files, "rs/attempt-3/run.json": mine}
    assert current(Volume(newer), known).run_dir == "rs/attempt-3"
