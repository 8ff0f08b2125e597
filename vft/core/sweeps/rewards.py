"""A run's reward, as a sweep summary shows it: the final and the best mean reward.

From the attempt's metrics.jsonl (`reward` is each step's mean reward), read by
vft/core/runs/metrics.py: a half-written last line, a cut row or a null is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vft.core.runs.metrics import METRICS_FILE, read_rows, series


@dataclass(frozen=True)
class Rewards:
    steps: int  # training steps with a reward
    final: float | None
    best: float | None
    best_step: int | None


def rewards(attempt_dir: str | Path) -> Rewards:
    """The final and best `reward` of an attempt's metrics.jsonl (None before any step)."""
    found = series(read_rows(Path(attempt_dir) / METRICS_FILE), "reward")
    if not found:
        return Rewards(0, None, None, None)
    best_step, best = max(found, key=lambda item: item[1])
    return Rewards(len(found), found[-1][1], best, best_step)


def reward_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
