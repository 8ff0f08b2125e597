"""A run's reward, as a sweep summary shows it: the final and the best mean reward.

From the attempt's metrics.jsonl rows (`reward` is each step's mean reward), read by
vft/core/runs/metrics.py: a half-written last line, a cut row or a null is skipped. Where
the rows come from (a local folder, a remote backend's volume) is the caller's business:
`vft runs --sweep` fetches them the way `vft status` does (vft/cli/run_metrics.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vft.core.runs.metrics import METRICS_FILE, Row, read_rows, series

#: a cell whose metrics could not be read (a remote folder out of reach): not "-", which
#: says there is nothing yet
UNREADABLE = "?"


@dataclass(frozen=True)
class Rewards:
    steps: int  # training steps with a reward
    final: float | None
    best: float | None
    best_step: int | None


def rewards_of(rows: Iterable[Row]) -> Rewards:
    """The final and best `reward` of metrics rows (None before any step)."""
    found = series(list(rows), "reward")
    if not found:
        return Rewards(0, None, None, None)
    best_step, best = max(found, key=lambda item: item[1])
    return Rewards(len(found), found[-1][1], best, best_step)


def rewards(attempt_dir: str | Path) -> Rewards:
    """The rewards of a metrics.jsonl in a folder on this machine."""
    return rewards_of(read_rows(Path(attempt_dir) / METRICS_FILE))


def reward_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
