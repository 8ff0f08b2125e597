"""The README's main command, end to end: `vft run examples/recipes/smoke.toml`.

A real GRPO run on the CPU (accelerate + DeepSpeed ZeRO-3, in-process generation),
cut to 4 steps (the recipe's full run, and its learning, is test_smoke_learns.py),
then a second `vft run -v` that resumes from the first one's last checkpoint. The first
run's console is the quiet one (progress and phase lines; the libraries' chatter only in
logs/trainer.log), the second's shows everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "examples" / "recipes" / "smoke.toml"

pytestmark = pytest.mark.slow


#: library output of every smoke run that the quiet console leaves to the log
NOISE = ("Setting accelerator to CPU", "Writing model shards")


def vft_run(out: Path, *overrides: str, verbose: bool = False) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "vft", "run", str(SMOKE), "--backend", "local"]
    argv += ["-v"] if verbose else []
    argv += ["--set", f"run.output_dir={json.dumps(str(out))}"]
    for o in overrides:
        argv += ["--set", o]
    env = {k: v for k, v in os.environ.items() if k != "VFT_VERBOSE"}
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)


def quiet_console(done: subprocess.CompletedProcess, trainer_log: Path, steps: int) -> None:
    """A handful of lines: vft's own, the trainer's phases and one line per step."""
    console = done.stdout.splitlines()
    trainer = [line.split(None, 1)[1] for line in console if line.startswith("[trainer]")]
    for step in range(1, steps + 1):
        assert sum(f"step {step}/{steps} | reward" in line for line in trainer) == 1
    assert len(console) <= steps + 16, done.stdout
    assert all(line.startswith(("vft.train: ", "(its other output")) for line in trainer)
    assert any(line.startswith("vft.train: ready to train after") for line in trainer)
    assert any(line.startswith("vft.train: mean reward over steps 1-") for line in trainer)
    log = trainer_log.read_text()
    for noise in NOISE:
        assert noise not in done.stdout + done.stderr and noise in log


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
    quiet_console(first, attempt / "logs" / "trainer.log", 4)

    second = vft_run(
        tmp_path,
        "trainer.resume_from_checkpoint=latest",
        "trainer.max_steps=6",
        "trainer.save_steps=2",
        verbose=True,
    )
    log = second.stdout + second.stderr
    assert all(noise in second.stdout for noise in NOISE)  # -v: everything, live
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
