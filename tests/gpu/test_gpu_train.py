"""A real vLLM server plus the built-in trainer on GPUs, for a few GRPO steps.

Run on a GPU machine with `pytest -m gpu tests/gpu`. Needs vLLM installed and two GPUs:
TRL's weight sync is an NCCL group between the trainer and the server, and NCCL refuses
two ranks on one device. The model is the offline `vft-tiny` build, so no hub is needed;
vLLM serves it from a local folder.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.gpu


def _gpus() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    if _gpus() < 2:
        pytest.skip("needs 2 GPUs (vLLM server + trainer with an NCCL weight-sync group)")
    pytest.importorskip("vllm")
    from vft.train import tiny

    return tiny.build(tmp_path_factory.mktemp("model") / "vft-tiny")


def recipe(tmp: Path, model: Path, env_id: str, steps: int, extra: str = "") -> Path:
    path = tmp / f"{env_id}.toml"
    path.write_text(
        f"""
name = "gpu-{env_id.replace("_", "-")}"
[model]
name = {json.dumps(str(model))}
params_b = 0.0003
[environment]
id = "{env_id}"
{extra}
[resources]
gpus = "H100:2"
[inference]
gpu_memory_utilization = 0.3
max_model_len = 1024
[trainer]
learning_rate = 5e-4
per_device_train_batch_size = 8
num_generations = 4
gradient_accumulation_steps = 1
max_steps = {steps}
max_tokens = 24
save_steps = {steps}
[run]
output_dir = {json.dumps(str(tmp / "outputs"))}
"""
    )
    return path


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 600) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"inference server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(2)
    raise AssertionError(f"{url} not ready after {timeout_s} s")


def run_plan(recipe_path: Path, pythonpath: list[str] = ()) -> Path:
    """Start the plan's server, wait for /health, run its trainer; return the attempt folder."""
    from vft.core.plan import NodeContext
    from vft.core.prepare import prepare
    from vft.core.runs import run_folder

    ports = {"inference": free_port(), "weight_sync": free_port(), "rendezvous": free_port()}
    plan = prepare(recipe_path, (), "local", ports=ports).plan
    attempt = run_folder(plan.run["output_dir"], plan.name).new_attempt(plan, "local")
    ctx = NodeContext(0, ("127.0.0.1",), str(attempt.path))
    server, trainer = (p.resolved(ctx) for p in plan.processes)
    assert server.role == "inference" and trainer.role == "trainer"
    base = {**os.environ, "PYTHONPATH": os.pathsep.join([*pythonpath, str(ROOT)])}
    logs = attempt.path / "logs"
    logs.mkdir(exist_ok=True)
    with (logs / "inference.log").open("w") as slog:
        srv = subprocess.Popen(
            list(server.argv),
            env={**base, **server.env},
            stdout=slog,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_ready(server.ready_url, srv)
            done = subprocess.run(
                list(trainer.argv),
                env={**base, **trainer.env},
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=1200,
            )
            (logs / "trainer.log").write_text(done.stdout + done.stderr)
            assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        finally:
            os.killpg(srv.pid, signal.SIGTERM)
            srv.wait(timeout=60)
    return attempt.path


def test_single_turn_grpo_against_a_vllm_server(tiny_model, tmp_path):
    attempt = run_plan(recipe(tmp_path, tiny_model, "vft_smoke", steps=3))
    rows = [json.loads(x) for x in (attempt / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert (attempt / "checkpoints" / "checkpoint-3" / "trainer_state.json").is_file()
    assert "generation on http://127.0.0.1:" in (attempt / "logs" / "trainer.log").read_text()


def test_multi_turn_wordle_rolls_out_on_the_server(tiny_model, tmp_path):
    env_path = str(ROOT / "environments" / "wordle")
    attempt = run_plan(
        recipe(tmp_path, tiny_model, "wordle", steps=2, extra='install = ["environments/wordle"]'),
        pythonpath=[env_path],
    )
    rows = [json.loads(x) for x in (attempt / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["reward"] is not None for r in rows)
