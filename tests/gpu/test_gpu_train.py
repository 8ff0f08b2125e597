"""Real GRPO steps on GPUs with real vLLM: `pytest -m gpu tests/gpu` on a GPU machine.

Needs `pip install -e ".[train,inference]"` (vLLM) and an NVIDIA GPU; skipped with the
reason elsewhere. The model is the offline `vft-tiny` build (no hub): the trainer builds
it into the run folder, and vLLM loads it from that local folder.

- One GPU: `vft run` on the local backend plans a single trainer with vLLM colocated in
  its process (TRL's `vllm_mode="colocate"`), the plan every one-GPU recipe gets.
- Two GPUs: a vLLM server plus the trainer (`vllm_mode="server"`). TRL syncs weights to
  the server over an NCCL group, and NCCL refuses two ranks on one device, so these
  tests need two GPUs.

Each test prints the run's steps/s; bench/gpu_check.sh runs them and collects the figures.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
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


def needs(gpus: int) -> None:
    have = _gpus()
    if have < gpus:
        why = {1: "an NVIDIA GPU", 2: "2 GPUs (vLLM server + trainer, NCCL weight sync)"}
        pytest.skip(f"needs {why[gpus]}; {have} visible")
    pytest.importorskip("vllm", reason='vLLM is not installed: pip install -e ".[inference]"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recipe(tmp: Path, model: str, env_id: str, steps: int, gpus: str, extra: str = "") -> Path:
    path = tmp / f"{env_id}.toml"
    path.write_text(
        f"""
name = "gpu-{env_id.replace("_", "-")}"
[model]
name = {json.dumps(model)}
params_b = 0.0003
[environment]
id = "{env_id}"
{extra}
[resources]
gpus = "{gpus}"
[inference]
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


def metrics(attempt: Path) -> list[dict]:
    return [json.loads(x) for x in (attempt / "metrics.jsonl").read_text().splitlines()]


def report_speed(label: str, rows: list[dict]) -> None:
    """Steps/s between the first and last logged step (the first includes vLLM's start)."""
    if len(rows) >= 2:
        rate = (len(rows) - 1) / max(rows[-1]["time"] - rows[0]["time"], 1e-9)
        print(
            f"\nfigure: {label}: {rate:.2f} steps/s over steps {rows[1]['step']}-{rows[-1]['step']}"
        )


# -- one GPU: vLLM colocated in the trainer, through `vft run` ------------------------------
def test_one_gpu_colocated_grpo_through_vft_run(tmp_path):
    needs(1)
    path = recipe(tmp_path, "vft-tiny", "vft_smoke", steps=3, gpus="H100:1")
    plan = json.loads(
        subprocess.run(
            [sys.executable, "-m", "vft", "plan", str(path), "--json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    )
    assert plan["inference"]["mode"] == "colocate"
    assert [p["role"] for p in plan["processes"]] == ["trainer"]
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "vft", "run", str(path), "--backend", "local"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    attempt = tmp_path / "outputs" / "gpu-vft-smoke" / "attempt-1"
    rows = metrics(attempt)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(isinstance(r["reward"], float) for r in rows)
    ckpt = attempt / "checkpoints" / "checkpoint-3"
    assert (ckpt / "trainer_state.json").is_file() and (ckpt / "model.safetensors").is_file()
    log = (attempt / "logs" / "trainer.log").read_text()
    assert "generation with vLLM colocated in the trainer" in log
    print(f"\nfigure: colocated run wall time {time.time() - started:.0f} s (vLLM start included)")
    report_speed("1 GPU, vLLM colocated", rows)


# -- two GPUs: a vLLM server and the trainer -----------------------------------------------
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    needs(2)
    from vft.train import tiny

    return tiny.build(tmp_path_factory.mktemp("model") / "vft-tiny")


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
    from vft.core.runs.folders import run_folder
    from vft.launch import prepare

    ports = {"inference": free_port(), "weight_sync": free_port(), "rendezvous": free_port()}
    plan = prepare(recipe_path, (), "local", ports=ports).plan
    assert plan.inference.mode == "server"
    attempt = run_folder(plan.run.output_dir, plan.name).new_attempt(plan, "local")
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
    attempt = run_plan(recipe(tmp_path, str(tiny_model), "vft_smoke", steps=3, gpus="H100:2"))
    rows = metrics(attempt)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert (attempt / "checkpoints" / "checkpoint-3" / "trainer_state.json").is_file()
    assert "generation on http://127.0.0.1:" in (attempt / "logs" / "trainer.log").read_text()
    report_speed("2 GPUs, vLLM server", rows)


def test_multi_turn_wordle_rolls_out_on_the_server(tiny_model, tmp_path):
    env_path = str(ROOT / "environments" / "wordle")
    attempt = run_plan(
        recipe(
            tmp_path,
            str(tiny_model),
            "wordle",
            steps=2,
            gpus="H100:2",
            extra='install = ["environments/wordle"]',
        ),
        pythonpath=[env_path],
    )
    rows = metrics(attempt)
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["reward"] is not None for r in rows)
