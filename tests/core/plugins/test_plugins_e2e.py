"""A third-party backend runs a plan, end to end: `vft run r.toml --backend example`.

vft-example (pip-installed, found through its entry point) starts the node entry in a
subprocess; the supervisor starts the plan's real processes: the testserver engine (a real
HTTP server on 127.0.0.1, from the pip-installed vft-testserver plugin) and a trainer
under `accelerate launch` that calls the server. Then status, logs, outputs and stop go
through the backend recorded in the run, as a user would use them.
"""

from __future__ import annotations

import json
import socket
import textwrap
import time
from pathlib import Path

import pytest

from tests.plugins.packages import install, plugin_env, vft

pytest.importorskip("vft.core.node.supervisor", reason="the supervisor is not written yet")
pytestmark = pytest.mark.timeout(300)

CLIENT = '''
"""The "trainer": asks the inference server for its models, writes an output, maybe waits."""
import json, os, sys, time, urllib.request
from pathlib import Path

url = os.environ["VFT_INFERENCE_URL"]
health = urllib.request.urlopen(url + "/health", timeout=5).status
models = json.load(urllib.request.urlopen(url + "/v1/models", timeout=5))
out = Path(os.environ["VFT_RUN_DIR"]) / "outputs" / "client.json"
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps({"health": health, "models": models, "args": sys.argv[1:]}))
print("client: got", [m["id"] for m in models["data"]], flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0)
print("client: done", flush=True)
'''

# accelerate without DeepSpeed: this test is about the plugin path, not the trainer stack
ACCELERATE = """
compute_environment: LOCAL_MACHINE
distributed_type: 'NO'
mixed_precision: 'no'
num_machines: 1
num_processes: 1
use_cpu: true
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def installed() -> None:
    install("vft-example")
    install("vft-testserver")


@pytest.fixture
def project(tmp_path: Path, installed: None) -> Path:
    (tmp_path / "client.py").write_text(CLIENT)
    (tmp_path / "accelerate.yaml").write_text(ACCELERATE)
    return tmp_path


def write_recipe(project: Path, *, sleep: float = 0.0) -> Path:
    recipe = project / "r.toml"
    recipe.write_text(
        textwrap.dedent(
            f"""
            name = "plugged"
            [model]
            name = "tiny-test-model"
            params_b = 0.0001
            [environment]
            id = "vft_smoke"
            [resources]
            gpus = "cpu"
            [inference]
            engine = "testserver"
            port = {free_port()}
            extra_args = ["--delay", "1"]
            [trainer]
            script = "client.py"
            args = ["{sleep}"]
            deepspeed = "accelerate.yaml"
            per_device_train_batch_size = 4
            num_generations = 4
            gradient_accumulation_steps = 1
            [run]
            output_dir = "{project / "outputs"}"
            trainer_start = "after_ready"
            ready_timeout_s = 60
            stop_grace_s = 3
            """
        )
    )
    return recipe


def test_vft_run_on_the_example_backend(project: Path, no_leftovers: str):
    recipe = write_recipe(project)
    env = plugin_env(VFT_TEST_TOKEN=no_leftovers)
    out = vft("run", str(recipe), "--backend", "example", env=env, cwd=project, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr

    attempt = project / "outputs" / "plugged" / "attempt-1"
    record = json.loads((attempt / "run.json").read_text())
    assert record["backend"] == "example"
    assert (record["status"], record["exit_code"]) == ("succeeded", 0)
    assert record["backend_argv"][1:3] == ["-m", "vft.core.node"]
    plan = json.loads((attempt / "plan.json").read_text())
    assert [p["name"] for p in plan["processes"]] == ["inference", "trainer"]

    # the trainer really talked to the real server, once it was ready
    result = json.loads((attempt / "outputs" / "client.json").read_text())
    assert result["health"] == 200
    assert [m["id"] for m in result["models"]["data"]] == ["tiny-test-model"]
    server_log = (attempt / "logs" / "inference.log").read_text()
    assert "testserver" in server_log and "ready" in server_log
    assert "GET /v1/models" in server_log
    assert "client: done" in (attempt / "logs" / "trainer.log").read_text()

    # the other commands dispatch through the recorded backend: vft-example's methods
    status = vft("status", "plugged", "--output-dir", "outputs", "--json", env=env, cwd=project)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "succeeded"
    logs = vft("logs", "plugged", "--output-dir", "outputs", "-p", "trainer", env=env, cwd=project)
    assert logs.returncode == 0, logs.stderr
    assert "client: got ['tiny-test-model']" in logs.stdout
    listed = vft("outputs", "ls", "plugged", "--output-dir", "outputs", env=env, cwd=project)
    assert "outputs/client.json" in listed.stdout
    dest = project / "downloaded"
    got = vft(
        "outputs", "get", "plugged", str(dest), "--output-dir", "outputs", "--prefix", "outputs/",
        env=env, cwd=project,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert json.loads((dest / "outputs" / "client.json").read_text()) == result


def test_detached_run_on_the_example_backend_stops_cleanly(project: Path, no_leftovers: str):
    recipe = write_recipe(project, sleep=120)
    env = plugin_env(VFT_TEST_TOKEN=no_leftovers)
    out = vft("run", str(recipe), "--backend", "example", "--detach", env=env, cwd=project)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "plugged"
    record = project / "outputs" / "plugged" / "attempt-1" / "run.json"
    deadline = time.monotonic() + 120
    while "client: got" not in _read(record.parent / "logs" / "trainer.log"):
        assert time.monotonic() < deadline, _read(record.parent / "agent.out")
        time.sleep(0.2)
    assert json.loads(record.read_text())["status"] == "running"

    stop = vft("stop", "plugged", "--output-dir", "outputs", env=env, cwd=project)
    assert stop.returncode == 0, stop.stderr
    assert "plugged attempt-1: stopped" in stop.stdout
    final = json.loads(record.read_text())
    assert final["status"] == "stopped" and final["exit_code"] == 128 + 15
    # no_leftovers: the server and the trainer are gone too


def _read(path: Path) -> str:
    return path.read_text() if path.is_file() else ""
