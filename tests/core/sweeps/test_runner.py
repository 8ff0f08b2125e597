"""The sweep runner's scheduling: how many points at once, GPU slices, stopping, refusals.

The backend here is a small in-memory one (a point "runs" for a few polls), so that the
policy is tested exactly; the real launches are tests/cli/test_sweep_cli.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vft.core.errors import PreflightError
from vft.core.runs import Attempt
from vft.core.sweeps.record import PointRecord, SweepRecord
from vft.core.sweeps.runner import Started, SweepRun


class PollBackend:
    """A point is running for `polls` status calls, then succeeded; stop() stops it."""

    def __init__(self, polls: int = 3) -> None:
        self.polls = polls
        self.seen: dict[Path, int] = {}
        self.stopped: list[str] = []

    def status(self, attempt: Attempt) -> dict[str, Any]:
        if attempt.run_name in self.stopped:
            return {"status": "stopped", "exit_code": 143}
        self.seen[attempt.path] = self.seen.get(attempt.path, 0) + 1
        done = self.seen[attempt.path] > self.polls
        return {"status": "succeeded", "exit_code": 0} if done else {"status": "running"}

    def stop(self, attempt: Attempt) -> None:
        self.stopped.append(attempt.run_name)


def _record(names: list[str]) -> SweepRecord:
    points = [PointRecord(n, {"trainer.seed": i}) for i, n in enumerate(names)]
    axes = [{"key": "trainer.seed", "values": list(range(len(names)))}]
    return SweepRecord("s", "r.toml", "local", axes, [], 1, points)


def _sweep(tmp_path, names, backend, *, start=None, **options: Any) -> tuple[SweepRun, list]:
    events: list[tuple[str, str, tuple[str, ...]]] = []
    runner: SweepRun

    def default_start(name: str, devices: tuple[str, ...]) -> Started:
        events.append(("start", name, devices))
        running = [r.devices for r in runner.running.values()]
        assert not any(set(devices) & set(d) for d in running), (devices, running)
        assert len(runner.running) < options["max_parallel"]
        return Started(Attempt(tmp_path / name / "attempt-1"), backend)  # type: ignore[arg-type]

    options = {"gpus": {}, "devices": None, "stop_requested": lambda: False, **options}
    runner = SweepRun(
        _record(names),
        str(tmp_path),
        start or default_start,
        say=lambda _: None,
        poll_s=0.0,
        **options,
    )
    return runner, events


def test_gpu_points_get_disjoint_gpus_and_wait_for_free_ones(tmp_path):
    names = ["a", "b", "c", "d"]
    gpus = {"a": 2, "b": 2, "c": 3, "d": 1}
    runner, events = _sweep(
        tmp_path, names, PollBackend(), max_parallel=4, gpus=gpus, devices=["0", "1", "2", "3"]
    )
    record = runner.run()
    assert record.status == "succeeded"
    assert [p.status for p in record.points] == ["succeeded"] * 4
    starts = {name: devices for _, name, devices in events}
    assert starts["a"] == ("0", "1") and starts["b"] == ("2", "3")
    assert len(starts["c"]) == 3 and len(starts["d"]) == 1  # c waited for a and b to end
    assert runner.free == ["0", "1", "2", "3"]  # every GPU given back


def test_max_parallel_bounds_cpu_points(tmp_path):
    runner, events = _sweep(tmp_path, ["a", "b", "c"], PollBackend(), max_parallel=2)
    assert runner.run().status == "succeeded"
    assert [e[1] for e in events] == ["a", "b", "c"] and all(e[2] == () for e in events)


def test_a_stop_stops_every_running_point_and_starts_no_more(tmp_path):
    backend = PollBackend(polls=10**6)  # never ends by itself
    calls = iter(range(10**6))
    runner, _ = _sweep(
        tmp_path,
        ["a", "b", "c"],
        backend,
        max_parallel=2,
        stop_requested=lambda: next(calls) > 20,
    )
    record = runner.run()
    assert sorted(backend.stopped) == ["a", "b"]
    assert [p.status for p in record.points] == ["stopped", "stopped", "not started"]
    assert record.status == "interrupted" and record.ended_at is not None


def test_a_point_refused_at_launch_is_recorded_and_the_others_run(tmp_path):
    backend = PollBackend()

    def start(name: str, devices: tuple[str, ...]) -> Started:
        if name == "b":
            raise PreflightError("port 8000 (inference) is already in use on this machine")
        return Started(Attempt(tmp_path / name / "attempt-1"), backend)  # type: ignore[arg-type]

    runner, _ = _sweep(tmp_path, ["a", "b", "c"], backend, start=start, max_parallel=1)
    record = runner.run()
    assert [p.status for p in record.points] == ["succeeded", "not launched", "succeeded"]
    assert record.points[1].note == "port 8000 (inference) is already in use on this machine"
    assert record.status == "failed"
    assert (tmp_path / "s.sweep.json").is_file()


def test_a_bug_while_watching_still_stops_what_runs(tmp_path):
    class Broken(PollBackend):
        def status(self, attempt: Attempt) -> dict[str, Any]:
            if attempt.run_name not in self.stopped and attempt.run_name == "b":
                raise KeyboardInterrupt  # what no handler catches
            return super().status(attempt)

    backend = Broken(polls=10**6)
    runner, _ = _sweep(tmp_path, ["a", "b"], backend, max_parallel=2)
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    assert sorted(backend.stopped) == ["a", "b"]


def test_a_restarted_point_is_followed_into_its_new_attempt(tmp_path):
    """A transient failure restarted (resources.restarts): attempt-1 failed and names
    attempt-2, which goes on; the point is what attempt-2 ends as."""

    class Restarting(PollBackend):
        def status(self, attempt: Attempt) -> dict[str, Any]:
            if attempt.number == 1:
                self.seen[attempt.path] = self.seen.get(attempt.path, 0) + 1
                if self.seen[attempt.path] == 2:  # recorded a poll after the failure shows
                    attempt.update(restarted_as=2)
                return {"status": "failed", "exit_code": 1}
            return super().status(attempt)

    backend = Restarting(polls=2)
    failed_for_good = PollBackend(polls=0)
    failed_for_good.status = lambda attempt: {"status": "failed", "exit_code": 1}  # type: ignore[method-assign]

    def start(name: str, devices: tuple[str, ...]) -> Started:
        chosen = backend if name == "a" else failed_for_good
        return Started(Attempt(tmp_path / name / "attempt-1"), chosen)  # type: ignore[arg-type]

    (tmp_path / "a" / "attempt-1").mkdir(parents=True)
    runner, _ = _sweep(tmp_path, ["a", "b"], backend, start=start, max_parallel=2)
    record = runner.run()
    assert (record.points[0].status, record.points[0].attempt) == ("succeeded", 2)
    assert (record.points[1].status, record.points[1].attempt) == ("failed", 1)
    assert record.status == "failed"
