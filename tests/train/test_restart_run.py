"""A real CPU GRPO run preempted mid-way restarts from its checkpoint by itself; an error
in the user's own training script is never run again.

The preemption is simulated from outside, as a cloud would do it: once attempt-1 holds
a complete checkpoint-2, the test kills the trainer process (its pid and start time from
the attempt's node record) with SIGKILL. `resources.restarts = 1` then makes `vft run`
start attempt-2 from that checkpoint, and the run ends at step 4 with exit code 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vft.core.node.identity import same
from vft.train.checkpoints import is_complete

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "examples" / "recipes" / "smoke.toml"

pytestmark = pytest.mark.slow


def vft_run(recipe: Path, out: Path, log: Path, *overrides: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "vft", "run", str(recipe), "--backend", "local"]
    for o in (f"run.output_dir={json.dumps(str(out))}", *overrides):
        argv += ["--set", o]
    with open(log, "wb") as f:
        return subprocess.Popen(argv, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)


def kill_trainer_after(attempt: Path, step: int, run: subprocess.Popen[bytes]) -> float:
    """SIGKILL the attempt's trainer once checkpoint-<step> is complete; the time it took."""
    started = time.monotonic()
    ckpt = attempt / "checkpoints" / f"checkpoint-{step}"
    while not is_complete(ckpt):
        assert run.poll() is None, "the run ended before its checkpoint was written"
        assert time.monotonic() - started < 600, "no checkpoint after 10 minutes"
        time.sleep(0.02)
    node = json.loads((attempt / "nodes" / "node-0.json").read_text())
    trainer = node["processes"]["trainer"]
    assert same(trainer["pid"], trainer["create_time"]), "the trainer had already ended"
    os.kill(trainer["pid"], signal.SIGKILL)
    return time.monotonic() - started


def test_a_killed_trainer_resumes_as_attempt_2_and_finishes(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    log = tmp_path / "vft.log"
    run = vft_run(
        SMOKE,
        tmp_path,
        log,
        "trainer.max_steps=4",
        "trainer.save_steps=2",
        "resources.restarts=1",
    )
    try:
        first = tmp_path / "smoke" / "attempt-1"
        kill_trainer_after(first, 2, run)
        code = run.wait(timeout=900)
    finally:
        if run.poll() is None:
            run.kill()
    out = log.read_text()
    assert code == 0, out[-4000:]
    ckpt = first / "checkpoints" / "checkpoint-2"
    assert (
        "vft: trainer was killed (SIGKILL): restarting from checkpoint-2 as attempt-2 "
        "(restart 1 of 1)" in out
    )
    assert f"resuming from {ckpt} (step 2)" in out
    one = json.loads((first / "run.json").read_text())
    assert (one["status"], one["exit_code"], one["restarted_as"]) == ("failed", 137, 2)
    second = tmp_path / "smoke" / "attempt-2"
    two = json.loads((second / "run.json").read_text())
    assert two["status"] == "succeeded" and two["restart"]["checkpoint"] == str(ckpt)
    assert two["restart"]["reason"] == "trainer was killed (SIGKILL)"
    steps = [
        json.loads(line)["step"] for line in (second / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [3, 4]
    final = json.loads((second / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert final["global_step"] == 4
    assert not (tmp_path / "smoke" / "attempt-3").exists()


BAD_SCRIPT = """\
def reward_of(text):
    raise ValueError("a bug in my reward function")


reward_of("x")
"""


def test_an_error_in_the_users_script_is_not_restarted(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    (tmp_path / "bad.py").write_text(BAD_SCRIPT)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(SMOKE.read_text().replace("[trainer]\n", '[trainer]\nscript = "bad.py"\n'))
    log = tmp_path / "vft.log"
    run = vft_run(recipe, tmp_path / "out", log, "trainer.max_steps=2", "resources.restarts=2")
    code = run.wait(timeout=600)
    out = log.read_text()
    assert code == 1, out[-4000:]
    assert "ValueError: a bug in my reward function" in out
    assert "vft: not restarted: trainer failed with exit code 1: an error in the run" in out
    attempts = sorted(p.name for p in (tmp_path / "out" / "smoke").iterdir())
    assert attempts == ["attempt-1"]
