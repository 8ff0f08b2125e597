"""Per-step metrics: one JSON row per logged step in `<run>/metrics.jsonl`, one progress line.

The file is written by the main process only, appended and flushed each step, so
`vft logs` and a crashed run both keep every finished step. With the plan's
`trainer.tensorboard` the same numbers also go to TensorBoard event files under
`<run>/tensorboard`; metrics.jsonl stays the record `vft status` and `vft plot` read.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from vft.core.runs.metrics import METRICS_FILE, read_rows, reward_blocks
from vft.train.console import say

TENSORBOARD_DIR = "tensorboard"


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


def stable_names(logs: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
    """TRL's log keys -> the stable names of metrics.jsonl.

    `rewards/<fn>/mean` -> `names[fn]` (e.g. `reward/<name>`, `metric/<name>`,
    `episode/turns`; `reward/<fn>` when `fn` is not in `names`), `rewards/<fn>/std` ->
    the same + `/std` for reward functions (dropped for metrics); an eval log's
    `eval_<key>` -> `eval/<stable key>`. `reward` (the weighted total) and every other
    key stay as TRL writes them.
    """
    names = names or {}
    out: dict[str, Any] = {}
    for key, value in logs.items():
        prefix = ""
        if key.startswith("eval_"):
            prefix, key = "eval/", key.removeprefix("eval_")
        if key.startswith("rewards/") and key.endswith(("/mean", "/std")):
            fn, stat = key.removeprefix("rewards/").rsplit("/", 1)
            stable = names.get(fn, f"reward/{fn}")
            if stat == "std":
                if not stable.startswith("reward/"):
                    continue
                stable += "/std"
            key = stable
        out[prefix + key] = value
    return out


class MetricsCallback(TrainerCallback):
    """Writes metrics.jsonl and prints the progress line (main process only).

    `names` maps the trainer's reward-function names to their stable names (see
    `stable_names`); eval rows (`eval/...` keys) are written as rows of their own.
    """

    def __init__(
        self,
        run_dir: str | Path,
        echo: bool = True,
        names: dict[str, str] | None = None,
        tensorboard: bool | None = None,
    ) -> None:
        """`tensorboard`: also write event files; None: as the run's plan.json says. A
        missing `tensorboard` package refuses here, before the first step, on every rank."""
        self.path = Path(run_dir) / METRICS_FILE
        self.echo = echo
        self.names = dict(names or {})
        self.tensorboard = planned_tensorboard(run_dir) if tensorboard is None else tensorboard
        if self.tensorboard:
            require_tensorboard()
        self._writer: Any = None
        self._last: tuple[float, float] | None = None  # (time, tokens seen)
        self._start: tuple[float, int] | None = None  # (time, step)
        self._timed: tuple[float, int] | None = None  # (time, step) of the first logged step

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = (time.time(), state.global_step)
        self._last = (time.time(), float(state.num_input_tokens_seen or 0))
        if self.tensorboard and state.is_world_process_zero and self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.path.parent / TENSORBOARD_DIR))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.echo and state.is_world_process_zero:  # the curve's numbers, at a glance
            for line in reward_blocks(read_rows(self.path)):
                say(line)

    def _scalars(self, row: dict[str, Any]) -> None:
        """The row's numbers as TensorBoard scalars at its step, flushed like the file."""
        if self._writer is None:
            return
        for key, value in row.items():
            if key not in ("step", "time") and type(value) in (int, float):
                self._writer.add_scalar(key, value, row["step"], walltime=row["time"])
        self._writer.flush()

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        now = time.time()
        if "reward" not in logs:
            if "eval_reward" in logs:
                self._write_eval(state, logs, now)
            return
        tokens = float(logs.get("num_tokens", state.num_input_tokens_seen or 0))
        row: dict[str, Any] = {"step": state.global_step, "time": round(now, 3)}
        row |= {k: _number(v) for k, v in stable_names(logs, self.names).items()}
        if self._last is not None and now > self._last[0]:
            row["tokens_per_s"] = round((tokens - self._last[1]) / (now - self._last[0]), 1)
        self._last = (now, tokens)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        self._scalars(row)
        if self.echo:
            print(progress_line(row, state.max_steps, self._eta(state, now)), flush=True)

    def _write_eval(self, state: Any, logs: dict[str, Any], now: float) -> None:
        row: dict[str, Any] = {"step": state.global_step, "time": round(now, 3)}
        row |= {k: _number(v) for k, v in stable_names(logs, self.names).items()}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        self._scalars(row)
        if self.echo:
            print(eval_line(row), flush=True)

    def _eta(self, state: Any, now: float) -> float | None:
        """Remaining steps at the speed since the first logged step: that one carries the
        warm-up (first compiles, caches) and would make the estimate wrong by minutes."""
        if self._start is None:
            return None
        if self._timed is None or state.global_step < self._timed[1]:
            self._timed = (now, state.global_step)
            return None
        done = state.global_step - self._timed[1]
        if done <= 0:
            return None
        return (now - self._timed[0]) / done * max(0, state.max_steps - state.global_step)


def planned_tensorboard(run_dir: str | Path) -> bool:
    """The plan's `trainer.tensorboard` (plan.json is the trainer's source of truth); False
    for a folder without a readable plan (a test's, a custom script's own folder)."""
    try:
        plan = json.loads((Path(run_dir) / "plan.json").read_text())
        return bool(plan["trainer"].get("tensorboard", False))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def require_tensorboard() -> None:
    """Refuse in one line (TrainerRefusal: vft.train exits 2, the run's failure line quotes
    it) when the `tensorboard` package torch's SummaryWriter needs is not installed: found
    before the first step, not after the model and data have cost minutes."""
    import importlib.util

    from vft.train.main import TrainerRefusal

    if importlib.util.find_spec("tensorboard") is None:
        raise TrainerRefusal(
            "logging.tensorboard = true needs the tensorboard package, which is not installed "
            "in the trainer's Python (pip install 'vft[tensorboard]', or set "
            "logging.tensorboard = false)"
        )


def eval_line(row: dict[str, Any]) -> str:
    """`eval at step 4 | reward 0.512 ± 0.100 | correct_answer 0.250 | boxed_format 0.500`."""

    def fmt(v: Any) -> str:
        return format(v, ".3f") if isinstance(v, int | float) else "-"

    parts = [
        f"eval at step {row['step']}",
        f"reward {fmt(row.get('eval/reward'))} ± {fmt(row.get('eval/reward_std'))}",
    ]
    parts += [
        f"{k.removeprefix('eval/reward/')} {fmt(v)}"
        for k, v in row.items()
        if k.startswith("eval/reward/") and not k.endswith("/std")
    ]
    return " | ".join(parts)


class SaveAtEndCallback(TrainerCallback):
    """Always checkpoint the last step, whatever save_steps says: a finished run resumes."""

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step >= state.max_steps:
            control.should_save = True
        return control
