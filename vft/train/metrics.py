"""Per-step metrics: one JSON row per logged step in `<run>/metrics.jsonl`, one progress line.

The file is written by the main process only, appended and flushed each step, so
`vft logs` and a crashed run both keep every finished step.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

METRICS_FILE = "metrics.jsonl"


def _number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def progress_line(row: dict[str, Any], max_steps: int, eta_s: float | None) -> str:
    """`step 3/10 | reward 0.412 ± 0.120 | loss 0.0123 | 812 tok/s | ETA 1m05s`."""

    def fmt(key: str, spec: str) -> str:
        v = row.get(key)
        return format(v, spec) if isinstance(v, int | float) else "-"

    eta = "-" if eta_s is None else f"{int(eta_s // 60)}m{int(eta_s % 60):02d}s"
    return (
        f"step {row['step']}/{max_steps} | reward {fmt('reward', '.3f')} ± {fmt('reward_std', '.3f')}"
        f" | loss {fmt('loss', '.4f')} | {fmt('tokens_per_s', '.0f')} tok/s | ETA {eta}"
    )


class MetricsCallback(TrainerCallback):
    """Writes metrics.jsonl and prints the progress line (main process only)."""

    def __init__(self, run_dir: str | Path, echo: bool = True) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.echo = echo
        self._last: tuple[float, float] | None = None  # (time, tokens seen)
        self._start: tuple[float, int] | None = None  # (time, step)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = (time.time(), state.global_step)
        self._last = (time.time(), float(state.num_input_tokens_seen or 0))

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs or "reward" not in logs:
            return
        now = time.time()
        tokens = float(logs.get("num_tokens", state.num_input_tokens_seen or 0))
        row: dict[str, Any] = {"step": state.global_step, "time": round(now, 3)}
        row |= {k: _number(v) for k, v in logs.items()}
        if self._last is not None and now > self._last[0]:
            row["tokens_per_s"] = round((tokens - self._last[1]) / (now - self._last[0]), 1)
        self._last = (now, tokens)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.echo:
            print(progress_line(row, state.max_steps, self._eta(state, now)), flush=True)

    def _eta(self, state: Any, now: float) -> float | None:
        if self._start is None:
            return None
        done = state.global_step - self._start[1]
        if done <= 0:
            return None
        return (now - self._start[0]) / done * max(0, state.max_steps - state.global_step)


class SaveAtEndCallback(TrainerCallback):
    """Always checkpoint the last step, whatever save_steps says: a finished run resumes."""

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step >= state.max_steps:
            control.should_save = True
        return control
