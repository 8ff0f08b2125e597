"""A finished point's line carries its reward, read by the caller's `reward_of` (the CLI
reads it through the point's backend, so a remote folder's reward shows too); while the
sweep stops, no point's reward is fetched (the summary table shows them)."""

from __future__ import annotations

from typing import Any

from vft.core.runs import Attempt
from vft.core.sweeps.record import PointRecord, SweepRecord
from vft.core.sweeps.rewards import Rewards
from vft.core.sweeps.runner import Started, SweepRun


class EndsAfterTwoPolls:
    def __init__(self) -> None:
        self.polls: dict[str, int] = {}

    def status(self, attempt: Attempt) -> dict[str, Any]:
        n = self.polls[attempt.run_name] = self.polls.get(attempt.run_name, 0) + 1
        return {"status": "succeeded", "exit_code": 0} if n > 2 else {"status": "running"}

    def stop(self, attempt: Attempt) -> None:
        self.polls[attempt.run_name] = 10**6


def _run(tmp_path, stop_after: int | None) -> tuple[list[str], list[str]]:
    backend = EndsAfterTwoPolls()
    lines: list[str] = []
    asked: list[str] = []
    polls = iter(range(10**6))

    def reward_of(started: Started) -> Rewards:
        asked.append(started.attempt.run_name)
        return Rewards(3, 0.5, 0.75, 2)

    record = SweepRecord(
        "s", "r.toml", "modal", [], [], 2, [PointRecord("a", {}), PointRecord("b", {})]
    )
    SweepRun(
        record,
        str(tmp_path),
        lambda name, _: Started(Attempt(tmp_path / name / "attempt-1"), backend),  # type: ignore[arg-type]
        max_parallel=2,
        gpus={},
        devices=None,
        stop_requested=lambda: stop_after is not None and next(polls) > stop_after,
        say=lines.append,
        poll_s=0.0,
        reward_of=reward_of,
    ).run()
    return lines, asked


def test_a_finished_points_line_has_the_reward_its_reader_gives(tmp_path):
    lines, asked = _run(tmp_path, stop_after=None)
    assert sorted(asked) == ["a", "b"]
    ends = [line for line in lines if " succeeded in " in line]
    assert len(ends) == 2 and all(line.endswith("; reward 0.500 (best 0.750)") for line in ends)


def test_no_reward_is_fetched_while_the_sweep_stops(tmp_path):
    lines, asked = _run(tmp_path, stop_after=2)
    assert asked == [] and any("stopping 2 running point(s)" in line for line in lines)
