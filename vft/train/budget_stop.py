"""The trainer's side of a budget stop, and of complete checkpoints (transformers callbacks).

`BudgetStop`: when the node's supervisor writes `stop-request.json` into the run folder
(the budget is nearly spent, vft/core/node/budget.py), training ends at the next step's
end with a checkpoint, and the trainer exits 0. Every process looks at each step's end
and the answer is agreed across processes (a max all-reduce of one number), so all of
them stop at the same step even where a node's request lands later than another's.
A file, not a signal: SIGTERM keeps meaning "stop now" (`vft stop`, a preemption), and
`accelerate launch` would not pass another signal on to its workers.

`CheckpointMarker`: writes `vft-checkpoint.json` into each checkpoint once every process
has written its part (a barrier, then the main process, atomically), with the step and
how long the save took (the budget's margin uses it). Resume takes only marked ones
(vft/train/checkpoints.py).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from vft.core.runs.folders import CHECKPOINT_MARKER, STOP_REQUEST


def _distributed() -> Any | None:
    """torch.distributed when several processes train together, else None."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist
    return None


def _any_rank(flag: bool, device: Any) -> bool:
    dist = _distributed()
    if dist is None:
        return flag
    import torch

    if dist.get_backend() == "nccl" and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


class BudgetStop(TrainerCallback):
    """Save and stop at the step's end once the supervisor asks (see the module's doc)."""

    def __init__(self, run_dir: str | Path, echo: bool = True) -> None:
        self.request = Path(run_dir) / STOP_REQUEST
        self.echo = echo
        self.stopping = False

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.stopping:
            return control
        if not _any_rank(self.request.is_file(), getattr(args, "device", "cpu")):
            return control
        self.stopping = True
        control.should_save = True
        control.should_training_stop = True
        if self.echo and state.is_world_process_zero:
            print(
                f"vft.train: budget: the supervisor asks to stop; saving "
                f"checkpoint-{state.global_step} and stopping",
                flush=True,
            )
        return control


class CheckpointMarker(TrainerCallback):
    """Mark each checkpoint complete once all of it is written (see the module's doc)."""

    def __init__(self) -> None:
        self._step_end = time.time()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self._step_end = time.time()  # a save follows the step's end (logging in between)
        return control

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        dist = _distributed()
        if dist is not None:  # every rank's shards and RNG state are on disk
            dist.barrier()
        if state.is_world_process_zero:
            folder = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
            write_marker(folder, state.global_step, time.time() - self._step_end)
        return control


def write_marker(folder: Path, step: int, save_s: float) -> Path:
    """The marker, written atomically (a reader sees all of it or none), flushed to disk."""
    path = folder / CHECKPOINT_MARKER
    data = {"step": step, "save_s": round(save_s, 3), "time": round(time.time(), 3)}
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{CHECKPOINT_MARKER}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
