"""`vft plot` in the terminal: no panel repeating the total, one precision per y axis,
last values that read plainly; on run folders written here as a run leaves them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from vft.cli.charts import axis_labels
from vft.core.runs.folders import run_folder
from vft.testing import plan_of, run_vft

T0 = time.time() - 3600


def make_attempt(out: Path, rows: list[dict]) -> None:
    attempt = run_folder(out, "smoke").new_attempt(plan_of(name="smoke"), "local")
    attempt.update(status="succeeded", started_at=T0, ended_at=T0 + 60, exit_code=0)
    (attempt.path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def rows(rewards: list[float], **parts: list[float]) -> list[dict]:
    return [
        {"step": i + 1, "time": T0 + i, "reward": r, "loss": 0.01}
        | {f"reward/{k}": v[i] for k, v in parts.items()}
        for i, r in enumerate(rewards)
    ]


def titles(out: Path, *args: str) -> list[str]:
    got = run_vft("plot", *args, "--output-dir", out, env={"COLUMNS": "100"})
    assert got.returncode == 0, got.stderr
    return [line for line in got.stdout.splitlines() if line[:1].isalpha()]


def test_one_reward_function_is_not_drawn_twice(tmp_path: Path) -> None:
    """The component equals the total (to float32 precision): one panel, one title."""
    total = [0.1004, 0.2410714328289032, 1.0]
    make_attempt(tmp_path, rows(total, only=[0.1004, 0.241071417927742, 1.0]))
    assert titles(tmp_path, "smoke") == ["reward  (last value: 1)", "loss  (last value: 0.01)"]


def test_components_that_differ_keep_their_panels(tmp_path: Path) -> None:
    make_attempt(tmp_path, rows([0.2, 1.0], a=[0.1, 0.5], b=[0.1, 0.5]))
    shown = [t.split("  ")[0] for t in titles(tmp_path, "smoke")]
    assert shown == ["reward", "reward/a", "reward/b", "loss"]


def test_two_attempts_are_named_by_attempt(tmp_path: Path) -> None:
    make_attempt(tmp_path, rows([0.2, 1.0]))
    make_attempt(tmp_path, rows([0.3, 0.5]))
    got = run_vft("plot", "smoke/attempt-1", "smoke/attempt-2", "--output-dir", tmp_path)
    assert got.returncode == 0, got.stderr
    assert "smoke (attempt 1)" in got.stdout and "smoke (attempt 2)" in got.stdout
    assert "reward  (last value: smoke (attempt 1) 1, smoke (attempt 2) 0.5)" in got.stdout


def test_y_axis_ends_share_one_precision() -> None:
    assert axis_labels(1.0, 0.1004) == ("1.000", "0.100")
    assert axis_labels(0.042, -0.162) == ("0.042", "-0.162")
    assert axis_labels(250.0, 12.5) == ("250", "12")
    assert axis_labels(2e5, 1e5) == ("2.00e+05", "1.00e+05")
