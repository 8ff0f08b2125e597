"""metrics.jsonl read back (vft/core/runs/metrics.py): tolerant parsing, curves, and the
summary `vft status` shows (step, reward and components, ETA, cost)."""

from __future__ import annotations

import json

import pytest

from vft.core.runs.metrics import (
    available,
    default_curves,
    duration,
    parse_rows,
    read_rows,
    reward_blocks,
    seconds_per_step,
    series,
    summarize,
    summary_lines,
)

T0 = 1_800_000_000.0


def row(step: int, t: float, reward: float, **extra: object) -> dict:
    return {
        "step": step,
        "time": T0 + t,
        "reward": reward,
        "reward_std": 0.1,
        "reward/correct": reward * 0.8,
        "reward/correct/std": 0.05,
        "reward/format": reward * 0.2,
        "loss": 0.01 * step,
        "kl": 0.001 * step,
        "tokens_per_s": 800.0,
        **extra,
    }


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_a_partial_last_line_junk_lines_and_nan_are_skipped_not_errors():
    text = jsonl([row(1, 10, 0.2), row(2, 20, 0.3)])
    text += "not json\n[1, 2]\n" + '{"time": 5}\n'  # no step: not a row
    text += '{"step": 3, "time": 1.0, "reward": NaN, "loss": Infinity}\n'
    text += '{"step": 4, "time": 40, "rew'  # the trainer is writing it right now
    rows = parse_rows(text)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[2]["reward"] is None and rows[2]["loss"] is None


def test_a_missing_or_unreadable_file_has_no_rows(tmp_path):
    assert read_rows(tmp_path / "metrics.jsonl") == []
    (tmp_path / "folder.jsonl").mkdir()
    assert read_rows(tmp_path / "folder.jsonl") == []


def test_summary_of_a_running_run_has_the_last_step_its_components_and_an_eta():
    rows = [row(s, 10.0 * s, 0.1 * s) for s in range(1, 6)]  # 10 s per step
    rows.append({"step": 5, "time": T0 + 52, "eval/reward": 0.7, "eval/reward_std": 0.2})
    s = summarize(rows, max_steps=20, started_at=T0, running=True, now=T0 + 53)
    assert (s.step, s.max_steps) == (5, 20)
    assert s.reward == pytest.approx(0.5) and s.reward_std == pytest.approx(0.1)
    assert s.components == {"correct": pytest.approx(0.4), "format": pytest.approx(0.1)}
    assert (s.loss, s.kl, s.tokens_per_s) == (pytest.approx(0.05), pytest.approx(0.005), 800.0)
    assert (s.eval_reward, s.eval_step) == (0.7, 5)
    assert s.s_per_step == pytest.approx(10.0)
    assert s.elapsed_s == pytest.approx(53.0)
    # 15 steps left at 10 s, less the 3 s since the last step's row
    assert s.eta_s == pytest.approx(147.0)
    assert s.usd_per_hour is None and s.usd_so_far is None  # no price, no $


def test_a_finished_run_has_no_eta_and_its_elapsed_time_stops_at_its_end():
    rows = [row(s, 10.0 * s, 0.5) for s in range(1, 4)]
    s = summarize(rows, max_steps=3, started_at=T0, ended_at=T0 + 40, now=T0 + 9999)
    assert s.eta_s is None and s.elapsed_s == 40.0


def test_cost_so_far_and_projected_for_a_priced_run():
    rows = [row(s, 360.0 * s, 0.5) for s in range(1, 6)]  # 6 min per step
    s = summarize(rows, max_steps=10, started_at=T0, running=True, now=T0 + 1800, usd_per_hour=4.0)
    assert s.usd_per_hour == 4.0
    assert s.usd_so_far == pytest.approx(2.0)  # half an hour
    assert s.eta_s == pytest.approx(1800.0)  # 5 steps of 6 min
    assert s.usd_projected == pytest.approx(4.0)
    done = summarize(rows, max_steps=5, started_at=T0, ended_at=T0 + 3600, now=0, usd_per_hour=4.0)
    assert done.usd_so_far == done.usd_projected == pytest.approx(4.0)
    lines = summary_lines(s)
    assert lines[1] == "elapsed 30m00s | ETA 30m00s | $2.00 so far, ~$4.00 projected ($4.00/h)"


def test_no_speed_and_no_eta_from_a_single_step():
    rows = [row(1, 10, 0.5)]
    assert seconds_per_step(rows) is None
    s = summarize(rows, max_steps=10, started_at=T0, running=True, now=T0 + 20)
    assert s.step == 1 and s.eta_s is None


def test_speed_is_measured_over_the_recent_window():
    slow = [row(s, 100.0 * s, 0.5) for s in range(1, 11)]
    fast = [row(s, 1000 + 2.0 * (s - 10), 0.5) for s in range(11, 41)]
    assert seconds_per_step(slow + fast, window=20) == pytest.approx(2.0)


def test_nothing_logged_yet_is_an_empty_summary():
    s = summarize([], max_steps=10, started_at=T0, running=True, now=T0 + 5)
    assert s.step is None and s.reward is None and s.eta_s is None and s.elapsed_s == 5.0
    assert summary_lines(s) == ["elapsed 5s"]


def test_summary_line_shows_the_reward_components_and_leaves_out_unlogged_kl():
    rows = [{"step": 2, "time": T0, "reward": 0.25, "reward/a": 0.25, "loss": 0.5}]
    s = summarize(rows, max_steps=4, now=T0)
    assert summary_lines(s) == ["step 2/4 | reward 0.250 (a 0.250) | loss 0.5"]


def test_series_skips_gaps_and_a_resumed_step_keeps_its_last_value():
    rows = [row(1, 1, 0.1), row(2, 2, 0.2), {"step": 3, "time": T0, "reward": None}]
    rows.append(row(2, 5, 0.25))  # a resumed attempt logged step 2 again
    assert series(rows, "reward") == [(1, 0.1), (2, 0.25)]
    assert series(rows, "nothing") == []


def test_default_curves_are_reward_its_components_loss_and_kl():
    rows = [row(1, 1, 0.1, entropy=3.0)]
    assert default_curves(rows) == ["reward", "reward/correct", "reward/format", "loss", "kl"]
    assert "entropy" in available(rows) and "step" not in available(rows)
    assert default_curves([{"step": 1, "reward": 0.5}]) == ["reward"]


@pytest.mark.parametrize(
    ("seconds", "shown"), [(None, "-"), (4.4, "4s"), (65, "1m05s"), (7620, "2h07m")]
)
def test_duration(seconds, shown):
    assert duration(seconds) == shown


def test_a_run_that_ended_unrecorded_counts_its_time_to_its_last_row():
    rows = [row(1, 10, 0.5), row(2, 20, 0.5)]
    s = summarize(rows, max_steps=9, started_at=T0, ended_at=None, running=False, now=T0 + 1e6)
    assert s.elapsed_s == 20.0 and s.eta_s is None
    assert summarize([], started_at=T0, now=T0 + 1e6).elapsed_s is None


def test_a_lone_component_equal_to_the_reward_is_not_drawn_twice() -> None:
    from vft.core.runs.metrics import default_curves

    same = [
        {"step": s, "reward": v, "reward/only": v, "loss": 0.1} for s, v in [(1, 0.2), (2, 0.5)]
    ]
    assert default_curves(same) == ["reward", "loss"]
    weighted = [{**r, "reward/only": r["reward"] / 2} for r in same]
    assert default_curves(weighted) == ["reward", "reward/only", "loss"]


def test_reward_blocks_read_as_the_readme_shows_them():
    """The run ends with its curve's numbers: the mean reward per 10 steps, 5 a line."""
    rows = [{"step": s, "reward": (s - 1) // 10 / 10, "time": 0.0} for s in range(1, 151)]
    rows.append({"step": 150, "eval/reward": 9.0, "time": 0.0})  # evaluations left out
    assert reward_blocks(rows) == [
        "mean reward per 10 steps:",
        "steps   1-50:  0.00 0.10 0.20 0.30 0.40",
        "steps  51-100: 0.50 0.60 0.70 0.80 0.90",
        "steps 101-150: 1.00 1.10 1.20 1.30 1.40",
    ]
    # a partial last block says where it ends; a run shorter than a block gets one mean
    assert reward_blocks(rows[:25])[-1] == "steps  1-25: 0.00 0.10 0.20"
    assert reward_blocks(rows[:2]) == ["mean reward over steps 1-2: 0.00"]
    assert reward_blocks([]) == []
