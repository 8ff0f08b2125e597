"""The CPU smoke recipe learns: `vft run examples/recipes/smoke.toml`, as the README shows it.

A real GRPO run of the random-weight `vft-tiny` on `vft_smoke` ("Reply using only uppercase
letters." / "... only digits.") under accelerate + DeepSpeed ZeRO-3 on the CPU, with the
recipe's fixed seed. The run is bit-identical from one run to the next on one machine
(1 or 2 CPU threads alike); its mean reward over the first 5 steps is 0.24, over the last
5 0.99. The bar here, +0.2, leaves room for another CPU's floating point taking another
path: with trainer.seed 1 and 2 the gain was +0.77 and +0.59.
"""

from __future__ import annotations

import json
import statistics
import tomllib
from pathlib import Path

import pytest

from vft.testing import run_vft

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "examples" / "recipes" / "smoke.toml"
MARGIN = 0.2

# ~30 s on 2 idle cores; several times that when the cores are shared (pyproject: 600 s)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def per_reward_key(key: str) -> bool:
    """A reward function's own mean: `reward/<name>` (or TRL's `rewards/<name>/mean`)."""
    if key.startswith("reward/"):
        return not key.endswith("/std")
    return key.startswith("rewards/") and key.endswith("/mean")


def test_smoke_recipe_reward_rises(tmp_path):
    pytest.importorskip("trl")
    recipe = tomllib.loads(SMOKE.read_text())
    steps = recipe["trainer"]["max_steps"]
    done = run_vft(
        "run",
        SMOKE,
        "--backend",
        "local",
        "--set",
        f"run.output_dir={json.dumps(str(tmp_path))}",
        cwd=ROOT,
        timeout=1100,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]

    attempt = tmp_path / recipe["name"] / "attempt-1"
    lines = (attempt / "metrics.jsonl").read_text().splitlines()
    rows = [row for line in lines if "reward" in (row := json.loads(line))]
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    rewards = [r["reward"] for r in rows]
    assert all(0.0 <= r <= 1.0 for r in rewards)
    # the task's one reward (weight 1) is the whole of the logged total
    own = [k for k in rows[0] if per_reward_key(k)]
    assert len(own) == 1, f"expected one per-reward key, got {own}"
    assert [r[own[0]] for r in rows] == pytest.approx(rewards)

    first, last = statistics.fmean(rewards[:5]), statistics.fmean(rewards[-5:])
    curve = [round(statistics.fmean(rewards[i : i + 10]), 2) for i in range(0, steps, 10)]
    assert last >= first + MARGIN, f"reward did not rise: {first:.3f} -> {last:.3f}; {curve}"
    assert (attempt / "checkpoints" / f"checkpoint-{steps}" / "model.safetensors").is_file()
