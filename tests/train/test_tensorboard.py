"""TensorBoard beside metrics.jsonl (vft/train/metrics.py): the same rows as event files,
and a missing `tensorboard` package refused in one line before the first step."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("transformers")

from vft.core.runs.metrics import read_rows
from vft.testing import plan_of
from vft.train.main import TrainerRefusal
from vft.train.metrics import TENSORBOARD_DIR, MetricsCallback, planned_tensorboard


def state(step: int) -> SimpleNamespace:
    return SimpleNamespace(
        global_step=step, max_steps=3, num_input_tokens_seen=0, is_world_process_zero=True
    )


def logs(step: int) -> dict:
    return {
        "loss": 0.1 * step,
        "reward": 0.2 * step,
        "reward_std": 0.05,
        "rewards/correct/mean": 0.2 * step,
        "rewards/correct/std": 0.01,
        "num_tokens": 100.0 * step,
        "kl": float("nan"),  # not finite: None in the file, left out of the events
    }


def train(run_dir: Path, tensorboard: bool | None) -> MetricsCallback:
    """Three logged steps and an eval, as the trainer calls the callback."""
    cb = MetricsCallback(run_dir, echo=False, tensorboard=tensorboard)
    cb.on_train_begin(None, state(0), None)
    for step in (1, 2, 3):
        cb.on_log(None, state(step), None, logs=logs(step))
    cb.on_log(None, state(3), None, logs={"eval_reward": 0.7, "eval_reward_std": 0.1})
    cb.on_train_end(None, state(3), None)
    return cb


def write_plan(run_dir: Path, tensorboard: bool) -> None:
    from dataclasses import replace

    plan = plan_of()
    plan = replace(plan, trainer=replace(plan.trainer, tensorboard=tensorboard))
    (run_dir / "plan.json").write_text(plan.to_json())


def test_event_files_hold_the_rows_of_metrics_jsonl(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (tmp_path / "plain").mkdir()
    train(tmp_path / "plain", tensorboard=False)
    assert not (tmp_path / "plain" / TENSORBOARD_DIR).exists()
    train(tmp_path, tensorboard=True)
    rows = read_rows(tmp_path / "metrics.jsonl")
    plain = read_rows(tmp_path / "plain" / "metrics.jsonl")
    assert [sorted(r) for r in rows] == [sorted(r) for r in plain]  # the file is unchanged
    assert rows[0]["kl"] is None

    board = EventAccumulator(str(tmp_path / TENSORBOARD_DIR))
    board.Reload()
    tags = set(board.Tags()["scalars"])
    assert {"reward", "reward/correct", "reward/correct/std", "loss", "eval/reward"} <= tags
    assert "kl" not in tags and "step" not in tags and "time" not in tags
    reward = [(s.step, round(s.value, 4)) for s in board.Scalars("reward")]
    assert reward == [(1, 0.2), (2, 0.4), (3, 0.6)]
    assert [(s.step, s.value) for s in board.Scalars("eval/reward")] == [(3, pytest.approx(0.7))]


def test_the_plan_decides_when_the_trainer_does_not_say(tmp_path):
    assert planned_tensorboard(tmp_path) is False  # no plan.json
    write_plan(tmp_path, tensorboard=True)
    assert planned_tensorboard(tmp_path) is True
    (tmp_path / "plan.json").write_text("{broken")
    assert planned_tensorboard(tmp_path) is False


def test_a_missing_tensorboard_package_is_refused_before_the_first_step(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "tensorboard", None)  # as if not installed
    write_plan(tmp_path, tensorboard=True)
    with pytest.raises(TrainerRefusal) as refused:
        MetricsCallback(tmp_path, echo=False)
    assert str(refused.value) == (
        "logging.tensorboard = true needs the tensorboard package, which is not installed in "
        "the trainer's Python (pip install 'vft[tensorboard]', or set logging.tensorboard = false)"
    )
    assert not (tmp_path / "metrics.jsonl").exists()
    write_plan(tmp_path, tensorboard=False)
    train(tmp_path, tensorboard=None)  # without it asked for, the missing package is fine
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])["step"] == 1
