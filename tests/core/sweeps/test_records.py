"""The sweep record and a point's reward, read back the way `vft runs --sweep` reads them."""

from __future__ import annotations

import json

import pytest

from vft.core.errors import UserError
from vft.core.sweeps.record import (
    PointRecord,
    SweepRecord,
    list_sweeps,
    read_sweep,
    sweep_attempt_refs,
    sweep_path,
    sweep_run_names,
)
from vft.core.sweeps.rewards import rewards


def _record(name: str = "smoke") -> SweepRecord:
    return SweepRecord(
        name=name,
        recipe="/r/smoke.toml",
        backend="local",
        axes=[{"key": "trainer.seed", "values": [1, 2]}, {"key": "trainer.beta", "values": [0]}],
        overrides=["trainer.max_steps=1"],
        max_parallel=2,
        points=[
            PointRecord("smoke-seed1-beta0", {"trainer.seed": 1, "trainer.beta": 0}, attempt=2),
            PointRecord("smoke-seed2-beta0", {"trainer.seed": 2, "trainer.beta": 0}),
        ],
    )


def test_the_record_reads_back_in_grid_order(tmp_path):
    record = _record()
    path = record.write(tmp_path)
    assert path == sweep_path(tmp_path, "smoke") == tmp_path / "smoke.sweep.json"
    back = read_sweep("smoke", tmp_path)
    assert back == record
    assert back.keys == ["trainer.seed", "trainer.beta"]  # not the file's sorted order
    assert sweep_run_names("smoke", tmp_path) == ["smoke-seed1-beta0", "smoke-seed2-beta0"]
    assert sweep_attempt_refs("smoke", tmp_path) == ["smoke-seed1-beta0/attempt-2"]
    assert list_sweeps(tmp_path) == ["smoke"] and list_sweeps(tmp_path / "none") == []


def test_a_missing_or_broken_record_is_one_line(tmp_path):
    _record("lr-scan").write(tmp_path)
    with pytest.raises(UserError) as exc:
        read_sweep("lr-sacn", tmp_path)
    assert exc.value.line() == (
        f"sweep 'lr-sacn' not found under {tmp_path}/ (sweeps: lr-scan); did you mean 'lr-scan'?"
    )
    sweep_path(tmp_path, "bad").write_text('{"name": "bad"}')
    with pytest.raises(UserError, match=r"^sweep 'bad': .*bad\.sweep\.json is unreadable"):
        read_sweep("bad", tmp_path)
    sweep_path(tmp_path, "cut").write_text('{"name": ')
    with pytest.raises(UserError, match="is unreadable"):
        sweep_run_names("cut", tmp_path)


def test_rewards_are_the_last_and_the_best_of_the_training_rows(tmp_path):
    rows = [
        {"step": 1, "reward": 0.2, "loss": 0.1},
        {"step": 2, "reward": 0.7},
        {"step": 2, "eval/reward": 0.9},  # an eval row: not a training reward
        {"step": 3, "reward": 0.5},
        {"step": 4, "reward": None},  # a non-finite value is written as null
    ]
    text = "\n".join(json.dumps(r) for r in rows) + '\n{"step": 5, "rew'  # cut mid-line
    (tmp_path / "metrics.jsonl").write_text(text)
    got = rewards(tmp_path)
    assert (got.steps, got.final, got.best, got.best_step) == (3, 0.5, 0.7, 2)
    empty = rewards(tmp_path / "no-such-attempt")
    assert (empty.steps, empty.final, empty.best) == (0, None, None)
