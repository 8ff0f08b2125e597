"""A budget cap end to end: `vft run` of the smoke recipe with a price and a tiny `max_usd`
(and `max_steps` far out of reach) stops itself before the cap, a complete checkpoint
first, with the status "stopped: budget" and exit code 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vft.core.runs.folders import CHECKPOINT_MARKER
from vft.train.checkpoints import latest_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "examples" / "recipes" / "smoke.toml"
USD_PER_HOUR = 36.0  # one cent a second
MAX_USD = 0.85  # 85 s: start-up (25-60 s on a busy 2-core machine), some steps, a save

pytestmark = pytest.mark.slow


def test_the_smoke_run_stops_itself_at_its_budget_with_a_complete_checkpoint(tmp_path):
    pytest.importorskip("trl")
    argv = [sys.executable, "-m", "vft", "run", str(SMOKE), "--backend", "local"]
    for o in (
        f"run.output_dir={json.dumps(str(tmp_path))}",
        f"resources.usd_per_hour={USD_PER_HOUR}",
        f"resources.max_usd={MAX_USD}",
        "run.stop_grace_s=3",
        "trainer.max_steps=100000",
        "trainer.save_steps=4",
    ):
        argv += ["--set", o]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    attempt = tmp_path / "smoke" / "attempt-1"
    record = json.loads((attempt / "run.json").read_text())
    assert record["status"] == "stopped: budget", log[-3000:]
    assert record["stop_reason"] == "budget"
    budget = record["budget"]
    limit = MAX_USD / USD_PER_HOUR * 3600
    assert budget["limit_s"] == limit and budget["spent_usd"] < MAX_USD
    assert record["ended_at"] - record["started_at"] < limit  # the spend never reached the cap
    assert "asking the trainer to save a checkpoint and stop" in log
    # the trainer saved at the step's end it was asked at, and that is the newest checkpoint
    saved = log.split("vft.train: budget: the supervisor asks to stop; saving ")[1].split()[0]

    ckpt = latest_checkpoint(attempt)
    assert ckpt is not None and ckpt.name == saved == Path(budget["checkpoint"]).name
    assert (ckpt / CHECKPOINT_MARKER).is_file() and (ckpt / "model.safetensors").is_file()
    # the marker is the last file written, after TRL's and every rank's own
    others = [p for p in ckpt.rglob("*") if p.is_file() and p.name != CHECKPOINT_MARKER]
    assert {"trainer_state.json", "model.safetensors"} <= {p.name for p in others}
    marked = (ckpt / CHECKPOINT_MARKER).stat().st_mtime_ns
    assert marked >= max(p.stat().st_mtime_ns for p in others)
    state = json.loads((ckpt / "trainer_state.json").read_text())
    rows = [json.loads(line) for line in (attempt / "metrics.jsonl").read_text().splitlines()]
    # the stop came at a step's end, and that step's checkpoint is the last one
    assert 1 <= state["global_step"] == rows[-1]["step"] < 100000
