"""Where checkpoints live, and which one `resume_from_checkpoint = "latest"` means.

Each attempt writes `<attempt>/checkpoints/checkpoint-<step>/`. A relaunch is a new
attempt folder next to the old ones, so "latest" looks across every sibling attempt and
picks the highest step (the newest attempt on a tie), among complete checkpoints only.

Complete means fully written: vft's trainer writes `vft-checkpoint.json` into a checkpoint
last, once every process has written its part (`CheckpointMarker` in budget_stop.py). A
folder without it was cut short (a kill mid-save, a preemption). transformers' own last
file, trainer_state.json, is not enough: other ranks' shards and TRL's extra state may
still be in flight after it, and it is not written atomically.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from vft.core.runs.folders import ATTEMPT, CHECKPOINT_MARKER

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
CHECKPOINTS_DIR = "checkpoints"


def checkpoints_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR


def is_complete(path: Path) -> bool:
    """A checkpoint the trainer finished writing: it holds the marker. Where no checkpoint
    beside it has one (written by a `trainer.script`, or by an earlier vft), a readable
    trainer_state.json is the best sign there is."""
    path = Path(path)
    if (path / CHECKPOINT_MARKER).is_file():
        return True
    if path.parent.is_dir() and any(
        (p / CHECKPOINT_MARKER).is_file() for p in path.parent.glob("checkpoint-*")
    ):
        return False  # this run marks its checkpoints: an unmarked one was cut short
    try:
        state = json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(state, dict)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of any attempt of this run, or None."""
    run_dir = Path(run_dir)
    best: tuple[int, int, Path] | None = None
    for attempt in run_dir.parent.iterdir() if run_dir.parent.is_dir() else ():
        m = ATTEMPT.match(attempt.name)
        if not m or not attempt.is_dir():
            continue
        for ckpt in checkpoints_dir(attempt).glob("checkpoint-*"):
            c = CHECKPOINT.match(ckpt.name)
            if c and is_complete(ckpt):
                key = (int(c.group(1)), int(m.group(1)), ckpt)
                if best is None or key[:2] > best[:2]:
                    best = key
    return best[2] if best else None


def resolve_resume(value: str | None, run_dir: str | Path) -> Path | None:
    """The checkpoint to resume from: None, "latest" (maybe none yet), or a path."""
    if not value:
        return None
    if value == "latest":
        return latest_checkpoint(run_dir)
    path = Path(value)
    if not is_complete(path):
        raise FileNotFoundError(
            f"trainer.resume_from_checkpoint: {value!r} is not a complete checkpoint folder "
            f"(no {CHECKPOINT_MARKER} or readable trainer_state.json); use 'latest' or a "
            "checkpoint-N path"
        )
    return path


def checkpoint_step(path: Path) -> int:
    m = CHECKPOINT.match(path.name)
    return int(m.group(1)) if m else 0
