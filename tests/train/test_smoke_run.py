"""The README's main command, end to end: `vft run examples/recipes/smoke.toml`.

A real GRPO run on the CPU (accelerate + DeepSpeed ZeRO-3, in-process generation),
cut to 4 steps (the recipe's full run, and its learning, is test_smoke_learns.py),
then a second `vft run` that resumes from the first one's last checkpoint.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "examples" / "recipes" / "smoke.toml"

pytestmark = pytest.mark.slow


def vft_run(out: Path, *overrides: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "vft", "run", str(SMOKE), "--backend", "local"]
    argv += ["--set", f"run.output_dir={json.dumps(str(out))}"]
    for o in overrides:
        argv += ["--set", o]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)


def weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def metrics(attempt: Path) -> list[dict]:
    return [json.loads(line) for line in (attempt / "metrics.jsonl").read_text().splitlines()]


def test_smoke_recipe_trains_checkpoints_and_resumes(tmp_path):
    pytest.importorskip("trl")
    first = vft_run(tmp_path, "trainer.max_steps=4", "trainer.save_steps=2")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    attempt = tmp_path / "smoke" / "attempt-1"
    ckpt = attempt / "checkpoints" / "checkpoint-4"
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "trainer_state.json").is_file()

    initial, trained = weights(attempt / "initial-model"), weights(ckpt)
    common = set(initial) & set(trained)
    assert common, "checkpoint and initial model share no tensor names"
    assert all(initial[k].shape == trained[k].shape for k in common)
    changed = [k for k in common if not (initial[k] == trained[k].to(initial[k].dtype)).all()]
    assert changed, "GRPO steps left every parameter unchanged"

    rows = metrics(attempt)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(isinstance(r["reward"], float) and "loss" in r for r in rows)
    assert "step 4/4 | reward" in first.stdout + first.stderr

    second = vft_run(
        tmp_path,
        "trainer.resume_from_checkpoint=latest",
        "trainer.max_steps=6",
        "trainer.save_steps=2",
    )
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-3000:]
    resumed = tmp_path / "smoke" / "attempt-2"
    assert f"resuming from {ckpt}" in log
    assert [r["step"] for r in metrics(resumed)] == [5, 6]
    state = json.loads(
        (resumed / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text()
    )
    assert state["global_step"] == 6


def test_custom_script_runs_with_the_plans_vft_variables(tmp_path):
    """`trainer.script`: examples/grpo/train_gsm8k.py under the same launch, env installed."""
    pytest.importorskip("trl")
    recipe = ROOT / "examples" / "recipes" / "custom-script.toml"
    argv = [sys.executable, "-m", "vft", "run", str(recipe), "--backend", "local"]
    argv += ["--set", f"run.output_dir={json.dumps(str(tmp_path))}"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    attempt = tmp_path / "custom-script-gsm8k" / "attempt-1"
    assert (attempt / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()
    assert (attempt / "final-model" / "model.safetensors").is_file()
