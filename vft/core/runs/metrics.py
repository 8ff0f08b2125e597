"""A run's metrics.jsonl read back: its rows, its curves, and one summary of where it stands.

The trainer (vft/train/metrics.py) appends one JSON row per logged step while the run goes
on, so a reader may meet a half-written last line, a row a crash cut short, or `null`
where the trainer had no finite value; all of them are skipped, never an error. Pure:
no torch, no I/O except reading the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"

#: the curves `vft plot` shows when none is asked for; reward components join them
DEFAULT_CURVES = ("reward", "loss", "kl")
#: how many recent steps the speed (and so the ETA) is measured over
SPEED_WINDOW = 20

Row = dict[str, Any]


def parse_rows(text: str) -> list[Row]:
    """The rows of a metrics.jsonl text; lines that are not a JSON object are skipped."""
    rows: list[Row] = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:  # a half-written last line, or a line a crash cut short
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append({k: _finite(v) for k, v in row.items()})
    return rows


def read_rows(path: str | Path) -> list[Row]:
    """parse_rows of a file; [] when it does not exist (yet) or cannot be read."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return []
    return parse_rows(text)


def _finite(value: Any) -> Any:
    """NaN and infinities (Python's json reads them) as None, like the trainer writes them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def is_eval(row: Row) -> bool:
    """An evaluation row (`eval/...` keys only) rather than a training step's."""
    return "reward" not in row and any(k.startswith("eval/") for k in row)


def train_rows(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if not is_eval(r)]


def components(row: Row) -> dict[str, float | None]:
    """A row's reward components: `reward/<name>` -> value (their `/std` left out)."""
    return {
        k.removeprefix("reward/"): _number(v)
        for k, v in row.items()
        if k.startswith("reward/") and not k.endswith("/std")
    }


def available(rows: Iterable[Row]) -> list[str]:
    """Every metric with at least one number in `rows`, sorted (`step` and `time` left out)."""
    found = {
        k
        for r in rows
        for k, v in r.items()
        if k not in ("step", "time") and _number(v) is not None
    }
    return sorted(found)


def default_curves(rows: Sequence[Row]) -> list[str]:
    """reward, its components, loss and KL: those of them the rows have. A lone component
    is left out when it is the reward itself (one function of weight 1): the same curve twice."""
    have = available(rows)
    parts = [m for m in have if m.startswith("reward/") and not m.endswith("/std")]
    if len(parts) == 1 and series(rows, parts[0]) == series(rows, DEFAULT_CURVES[0]):
        parts = []
    wanted = [DEFAULT_CURVES[0], *parts, *DEFAULT_CURVES[1:]]
    return [m for m in wanted if m in have]


def series(rows: Iterable[Row], metric: str) -> list[tuple[int, float]]:
    """(step, value) of `metric` wherever it is a number; a resumed step keeps its last value."""
    points: dict[int, float] = {}
    for r in rows:
        value = _number(r.get(metric))
        if value is not None:
            points[int(r["step"])] = value
    return sorted(points.items())


def reward_blocks(rows: Iterable[Row], size: int = 10, per_line: int = 5) -> list[str]:
    """The mean reward per `size` steps, `per_line` blocks a line, as the README shows it:
    `steps   1-50:  0.21 0.21 0.27 0.29 0.37`. A run shorter than a block gets one mean."""
    points = series(train_rows(rows), "reward")
    if not points:
        return []
    if points[-1][0] < size:
        mean = sum(v for _, v in points) / len(points)
        return [f"mean reward over steps {points[0][0]}-{points[-1][0]}: {mean:.2f}"]
    blocks: dict[int, list[float]] = {}
    for step, value in points:
        blocks.setdefault((step - 1) // size, []).append(value)
    means = [(i, sum(v) / len(v)) for i, v in sorted(blocks.items())]
    width = len(str((means[-1][0] + 1) * size))
    lines = []
    for start in range(0, len(means), per_line):
        chunk = means[start : start + per_line]
        first, last = chunk[0][0] * size + 1, min((chunk[-1][0] + 1) * size, points[-1][0])
        label = f"steps {first:>{width}}-{last}:"
        lines.append(f"{label:<{2 * width + 8}} " + " ".join(f"{m:.2f}" for _, m in chunk))
    return [f"mean reward per {size} steps:", *lines]


@dataclass(frozen=True)
class Summary:
    """Where a run stands, as `vft status` shows it; None where it is not known (yet)."""

    step: int | None = None
    max_steps: int | None = None
    reward: float | None = None
    reward_std: float | None = None
    components: dict[str, float | None] = field(default_factory=dict)
    loss: float | None = None
    kl: float | None = None
    tokens_per_s: float | None = None
    eval_reward: float | None = None
    eval_step: int | None = None
    elapsed_s: float | None = None
    s_per_step: float | None = None
    eta_s: float | None = None
    usd_per_hour: float | None = None  # only for a run with a price (> 0)
    usd_so_far: float | None = None
    usd_projected: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seconds_per_step(rows: Sequence[Row], window: int = SPEED_WINDOW) -> float | None:
    """Wall seconds per step over the last `window` logged steps; None under two of them."""
    timed = [(r["step"], t) for r in rows if (t := _number(r.get("time"))) is not None]
    timed = timed[-(window + 1) :]
    if len(timed) < 2 or timed[-1][0] <= timed[0][0]:
        return None
    return max(0.0, timed[-1][1] - timed[0][1]) / (timed[-1][0] - timed[0][0])


def summarize(
    rows: Sequence[Row],
    *,
    max_steps: int | None = None,
    started_at: float | None = None,
    ended_at: float | None = None,
    running: bool = False,
    now: float,
    usd_per_hour: float = 0.0,
) -> Summary:
    """The last step's numbers, elapsed time, ETA and cost for a run's rows.

    Elapsed runs from `started_at` to `ended_at` (to `now` while `running`; to the last
    row for an end nobody recorded, a run lost to kill -9). The ETA is
    the remaining steps at the recent speed, less the time since the last row; only a
    running run has one. Cost is shown only with a price: usd_per_hour > 0 (a paid
    backend, or own hardware with a price set); projected = so far + ETA's worth.
    """
    steps = train_rows(rows)
    last = steps[-1] if steps else {}
    evals = [r for r in rows if is_eval(r)]
    step = last.get("step")
    elapsed = None
    end = now if running else ended_at if ended_at is not None else _number(last.get("time"))
    if started_at is not None and end is not None:
        elapsed = max(0.0, end - started_at)
    speed = seconds_per_step(steps)
    eta = None
    if running and speed is not None and step is not None and max_steps is not None:
        since = max(0.0, now - (_number(last.get("time")) or now))
        eta = max(0.0, speed * max(0, max_steps - step) - since)
    price = usd_per_hour if usd_per_hour and usd_per_hour > 0 else None
    so_far = projected = None
    if price is not None and elapsed is not None:
        so_far = round(price * elapsed / 3600, 2)
        if eta is not None:
            projected = round(price * (elapsed + eta) / 3600, 2)
        elif not running:
            projected = so_far
    return Summary(
        step=step,
        max_steps=max_steps,
        reward=_number(last.get("reward")),
        reward_std=_number(last.get("reward_std")),
        components=components(last),
        loss=_number(last.get("loss")),
        kl=_number(last.get("kl")),
        tokens_per_s=_number(last.get("tokens_per_s")),
        eval_reward=_number(evals[-1].get("eval/reward")) if evals else None,
        eval_step=evals[-1].get("step") if evals else None,
        elapsed_s=None if elapsed is None else round(elapsed, 1),
        s_per_step=None if speed is None else round(speed, 3),
        eta_s=None if eta is None else round(eta, 1),
        usd_per_hour=price,
        usd_so_far=so_far,
        usd_projected=projected,
    )


def duration(seconds: float | None) -> str:
    """`42s`, `3m05s`, `2h07m`; `-` for unknown."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def summary_lines(summary: Summary) -> list[str]:
    """Two lines of text: the step's numbers, then time and cost. [] before any number."""

    def num(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    s = summary
    lines: list[str] = []
    if s.step is not None:
        total = "?" if s.max_steps is None else str(s.max_steps)
        reward = f"reward {num(s.reward, '.3f')}"
        if s.reward_std is not None:
            reward += f" ± {s.reward_std:.3f}"
        if s.components:
            reward += " (" + ", ".join(f"{k} {num(v, '.3f')}" for k, v in s.components.items())
            reward += ")"
        parts = [f"step {s.step}/{total}", reward]
        if s.loss is not None:
            parts.append(f"loss {s.loss:.4g}")
        if s.kl is not None:  # TRL logs none with beta = 0
            parts.append(f"KL {s.kl:.4g}")
        if s.tokens_per_s is not None:
            parts.append(f"{s.tokens_per_s:.0f} tok/s")
        if s.eval_reward is not None:
            parts.append(f"eval reward {s.eval_reward:.3f} (step {s.eval_step})")
        lines.append(" | ".join(parts))
    timing: list[str] = []
    if s.elapsed_s is not None:
        timing.append(f"elapsed {duration(s.elapsed_s)}")
    if s.eta_s is not None:
        timing.append(f"ETA {duration(s.eta_s)}")
    if s.usd_so_far is not None:
        money = f"${s.usd_so_far:.2f} so far"
        if s.usd_projected is not None and s.eta_s is not None:
            money += f", ~${s.usd_projected:.2f} projected"
        timing.append(f"{money} (${s.usd_per_hour:.2f}/h)")
    if timing:
        lines.append(" | ".join(timing))
    return lines
