"""The Volume is committed as soon as a checkpoint is marked complete, and a budget stop's
last checkpoint reaches it.

The boundary is Modal's `Volume.commit()`: a fake volume object stands in for it, copying
the folder into `committed/` (what another container or a download would see).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from vft.backends.modal.container import CheckpointCommitter, run_in_volume
from vft.core.plan import Plan
from vft.core.runs.folders import CHECKPOINT_MARKER


class FakeVolume:
    def __init__(self, root: Path) -> None:
        self.live, self.committed = root / "volume", root / "committed"
        self.live.mkdir(parents=True)
        self.commits = 0

    def commit(self) -> None:
        if self.committed.exists():
            shutil.rmtree(self.committed)
        shutil.copytree(self.live, self.committed)
        self.commits += 1


def test_a_marked_checkpoint_is_committed_at_the_first_look(tmp_path: Path) -> None:
    volume = FakeVolume(tmp_path)
    c = CheckpointCommitter(volume.live, volume.commit, poll_s=3600, every_s=3600)
    ckpt = volume.live / "checkpoints" / "checkpoint-7"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"w" * 64)
    assert c.look() == []  # unmarked: maybe still being written
    (ckpt / CHECKPOINT_MARKER).write_text(json.dumps({"step": 7, "save_s": 0.5}))
    assert c.look() == ["checkpoints/checkpoint-7"]  # no second look needed
    assert (volume.committed / "checkpoints" / "checkpoint-7" / CHECKPOINT_MARKER).is_file()
    assert c.look() == [] and volume.commits == 1


def test_a_budget_stop_in_the_container_commits_its_last_checkpoint(
    tmp_path: Path, make_plan: Callable[..., Plan], proc: Callable[..., object]
) -> None:
    trainer = proc("trainer", "budget_trainer.py", "{{run_dir}}", "--step-s", "0.2")
    plan = make_plan(trainer, name="b", max_hours=5 / 3600, stop_grace_s=1.0)
    plan = replace(plan, files={"accelerate.yaml": "x: 1\n"})
    volume = FakeVolume(tmp_path)
    code = run_in_volume(
        plan, volume.live, "b/attempt-1", 0, ("127.0.0.1",), commit=volume.commit, poll_s=0.2
    )
    assert code == 0
    run = volume.committed / "b" / "attempt-1"
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "stopped: budget" and record["stop_reason"] == "budget"
    last = record["budget"]["checkpoint"]
    assert (run / last / CHECKPOINT_MARKER).is_file()
