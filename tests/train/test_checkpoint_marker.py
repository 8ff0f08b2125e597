"""Complete checkpoints: resume takes only marked ones; and the trainer's processes agree
on a budget stop. (The marker written last by TRL's real save path, and the stop itself:
tests/train/test_budget_run.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vft.core.runs.folders import CHECKPOINT_MARKER
from vft.train.checkpoints import is_complete, latest_checkpoint, resolve_resume


def checkpoint(run: Path, step: int, *, marked: bool, state: str = '{"global_step": 1}') -> Path:
    path = run / "checkpoints" / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"\0" * 16)
    (path / "trainer_state.json").write_text(state)
    if marked:
        (path / CHECKPOINT_MARKER).write_text(json.dumps({"step": step, "save_s": 0.1}))
    return path


def test_a_marked_checkpoint_is_complete_and_an_unmarked_one_beside_it_is_not(tmp_path):
    run = tmp_path / "r" / "attempt-1"
    done = checkpoint(run, 2, marked=True)
    cut = checkpoint(run, 4, marked=False)  # trainer_state.json written, the rest not yet
    assert is_complete(done) and not is_complete(cut)
    assert latest_checkpoint(run) == done
    with pytest.raises(FileNotFoundError, match="is not a complete checkpoint folder"):
        resolve_resume(str(cut), run)


def test_without_any_marker_a_readable_trainer_state_counts(tmp_path):
    """Checkpoints of a `trainer.script`, or of an earlier vft: none is marked."""
    run = tmp_path / "r" / "attempt-1"
    old = checkpoint(run, 2, marked=False)
    torn = checkpoint(run, 4, marked=False, state='{"global_st')  # killed mid-write
    assert is_complete(old) and not is_complete(torn)
    assert latest_checkpoint(run) == old


def test_resume_takes_the_newest_complete_checkpoint_of_any_attempt(tmp_path):
    first, second = tmp_path / "r" / "attempt-1", tmp_path / "r" / "attempt-2"
    checkpoint(first, 6, marked=True)
    best = checkpoint(second, 8, marked=True)
    checkpoint(second, 10, marked=False)  # the budget's hard stop cut this one short
    assert latest_checkpoint(tmp_path / "r" / "attempt-3") == best


AGREE = """
import os, sys
import torch.distributed as dist
from vft.train.budget_stop import _any_rank
rank, port = int(sys.argv[1]), sys.argv[2]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
print(_any_rank(rank == 1, "cpu"), _any_rank(False, "cpu"), flush=True)
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_every_process_stops_at_the_same_step_when_one_sees_the_request():
    """Two real gloo processes: only rank 1 sees the request file; both agree to stop."""
    import subprocess
    import sys

    pytest.importorskip("torch")
    from vft.testing import free_port

    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", AGREE, str(rank), port], stdout=subprocess.PIPE, text=True
        )
        for rank in (0, 1)
    ]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == [["True", "False"], ["True", "False"]]
