"""The Slurm backend on a real Slurm cluster: scripts/slurm-test-cluster.sh's two nodes.

Both nodes are this machine (127.0.0.1, one slurmd each) with two fake GPUs apiece: Slurm
schedules them and sets CUDA_VISIBLE_DEVICES per step, but nothing uses a GPU (the one
boundary faked here; the trainer is a small script on the CPU, the server the CPU
`testserver` engine). Everything else is real: sbatch, srun, scancel, one supervisor per
node, HTTP from the trainer on node 2 to the server on node 1 by its resolved address.

Skipped, with the reason, when no cluster answers `scontrol ping`; start one with
`eval "$(scripts/slurm-test-cluster.sh start)"`.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from test_slurm_script import PLUGINS, REPO, ensure_installed

from vft.testing import TOKEN_VAR, free_port, run_vft

pytestmark = pytest.mark.slurm

TESTSERVER = {"vft_testserver": REPO / "tests" / "plugins" / "vft-testserver"}
DEFAULT_CONF = (
    Path(os.environ.get("VFT_SLURM_DIR") or Path(tempfile.gettempdir()) / "vft-slurm-test")
    / "slurm.conf"
)

# The trainer: what vft and Slurm told it, written where the test reads it, then the
# server reached over HTTP at the address the plan resolved for node 0.
TRAINER = """
import json, os, sys, time, urllib.request
from pathlib import Path

opts = dict(zip(sys.argv[1::2], sys.argv[2::2]))  # --hold FILE, --exit-code N
keys = ("VFT_NODE_RANK", "VFT_INFERENCE_HOST", "VFT_INFERENCE_URL", "CUDA_VISIBLE_DEVICES",
        "SLURM_NODEID", "SLURMD_NODENAME", "SLURM_JOB_ID", "RANK")
report = {k: os.environ.get(k) for k in keys}
deadline = time.monotonic() + 60
while True:
    try:
        url = os.environ["VFT_INFERENCE_URL"] + "/v1/models"
        with urllib.request.urlopen(url, timeout=2) as r:
            report["models"] = [m["id"] for m in json.load(r)["data"]]
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
if "--all-reduce" in sys.argv:  # the trainer nodes found each other (accelerate's rendezvous)
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    total = torch.tensor([float(dist.get_rank() + 1)])
    dist.all_reduce(total)
    report |= {"world_size": dist.get_world_size(), "all_reduce": total.item()}
    report["MASTER_ADDR"] = os.environ.get("MASTER_ADDR")
    dist.destroy_process_group()  # else gloo's threads can abort the process at exit
run_dir = Path(os.environ["VFT_RUN_DIR"])
(run_dir / f"trainer-report-{os.environ.get('RANK', '0')}.json").write_text(json.dumps(report))
print("trainer reached", os.environ["VFT_INFERENCE_URL"], flush=True)
if "--hold" in opts:  # until the test has looked at the running job
    while not (run_dir / opts["--hold"]).exists():
        time.sleep(0.1)
sys.exit(int(opts.get("--exit-code", "0")))
"""


def cluster_problem() -> str | None:
    """Why no Slurm test cluster can be used here, or None when one answers."""
    conf = os.environ.get("SLURM_CONF") or (str(DEFAULT_CONF) if DEFAULT_CONF.is_file() else "")
    start = 'start one with eval "$(scripts/slurm-test-cluster.sh start)"'
    if not conf:
        return f"no Slurm test cluster: SLURM_CONF is not set; {start}"
    if not Path(conf).is_file():  # Slurm's commands would retry for a minute
        return f"no Slurm test cluster: SLURM_CONF={conf} does not exist; {start}"
    try:
        out = subprocess.run(
            ["scontrol", "ping"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "SLURM_CONF": conf},
        )
    except FileNotFoundError:
        return "no Slurm test cluster: scontrol is not installed (scripts/slurm-test-cluster.sh install)"
    except subprocess.TimeoutExpired:
        return f"no Slurm test cluster: scontrol ping did not answer in 30 s (SLURM_CONF={conf})"
    if out.returncode != 0 or "UP" not in out.stdout:
        why = (out.stdout + out.stderr).strip().replace("\n", "; ")
        return f"no Slurm test cluster answers at SLURM_CONF={conf}: scontrol ping: {why}; {start}"
    os.environ["SLURM_CONF"] = conf  # for sbatch/scontrol in this process and in vft's
    return None


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    problem = cluster_problem()
    if problem:
        pytest.skip(problem)
    ensure_installed({**PLUGINS, **TESTSERVER})


@pytest.fixture
def project(tmp_path: Path, no_leftovers: str, monkeypatch) -> Path:
    """A folder with the trainer script; every process of the job carries the test's token.

    sbatch passes this environment on to the job, so `no_leftovers` sees its processes.
    """
    monkeypatch.setenv(TOKEN_VAR, no_leftovers)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trainer.py").write_text(TRAINER)
    return tmp_path


def write_recipe(
    folder: Path,
    *,
    gpus: str = "T4:1",
    nodes: int = 2,
    inference_gpus: int = 1,
    trainer_args=(),
    extra_args=(),
) -> Path:
    """The server on node 0, the trainer on the other nodes (one process per GPU)."""
    path = folder / "r.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            name = "slurm-run"
            [model]
            name = "vft-tiny"
            params_b = 0.0001
            [environment]
            id = "vft_smoke"
            [resources]
            gpus = "{gpus}"
            nodes = {nodes}
            inference_gpus = {inference_gpus}
            [inference]
            engine = "testserver"
            port = {free_port()}
            extra_args = {json.dumps(list(extra_args))}
            [trainer]
            script = "trainer.py"
            args = {json.dumps(list(trainer_args))}
            per_device_train_batch_size = 2
            num_generations = 2
            gradient_accumulation_steps = 1
            [run]
            output_dir = "{folder}/outputs"
            stop_grace_s = 5
            [backend.slurm]
            time_limit = "10:00"
            """
        )
    )
    return path


def launch(recipe: Path, *, detach: bool):
    """prepare + check + a new attempt + launch, as `vft run` does, with free ports.

    `vft run` has no way to move a port on a cluster's nodes, and two nodes on one machine
    share ports, so the test picks free ones (prepare's `ports=`).
    """
    from vft.core.runs.folders import run_folder
    from vft.launch import prepare

    ports = {"rendezvous": free_port(), "weight_sync": free_port(), "dp_rpc": free_port()}
    prepared = prepare(recipe, (), "slurm", ports=ports)
    plan, backend = prepared.plan, prepared.backend
    notes = backend.check(plan)
    assert any("the job would start at" in n for n in notes), notes
    attempt = run_folder(plan.run.output_dir, plan.name).new_attempt(plan, "slurm")
    code = backend.launch(plan, attempt, detach=detach)
    return backend, attempt, code


def vft(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    out = run_vft(*args, timeout=300)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def wait_for(predicate, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def blocker():
    """A job holding GPU 0 of both nodes, so the run gets GPU 1: device ids must be mapped."""
    job = subprocess.run(
        ["sbatch", "--parsable", "-N2", "--ntasks-per-node=1", "--gres=gpu:1", "-J", "blocker",
         "--output=/dev/null", "--wrap", "sleep 600"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    from vft_slurm import slurm

    wait_for(lambda: slurm.job(job).state == "RUNNING", 30, "the blocker job")
    yield job
    subprocess.run(["scancel", job], check=False)
    wait_for(lambda: not slurm.job(job).active, 60, "the blocker job to end")


def test_two_node_run(project, blocker):
    """The server on node 1 and the trainer on node 2, each on the GPU Slurm gave it."""
    import psutil
    from vft_slurm import slurm

    recipe = write_recipe(project, trainer_args=["--hold", "release"])
    started = time.monotonic()
    backend, attempt, code = launch(recipe, detach=True)
    assert code == 0
    job_id = attempt.record()["slurm_job_id"]
    report_path = attempt.path / "trainer-report-0.json"
    wait_for(report_path.exists, what="the trainer's report")

    report = json.loads(report_path.read_text())
    addr = attempt.nodes()[0]["address"]
    assert addr == "127.0.0.1"  # node1's NodeAddr in slurm.conf, resolved
    assert report["VFT_INFERENCE_HOST"] == addr
    assert report["models"] == ["vft-tiny"]  # the server answered over HTTP
    assert report["VFT_NODE_RANK"] == "1" and report["SLURM_NODEID"] == "1"
    assert report["SLURMD_NODENAME"] == "node2" and report["SLURM_JOB_ID"] == job_id
    # the plan's device 0 of each node is the GPU Slurm gave the job there: 1
    assert report["CUDA_VISIBLE_DEVICES"] == "1"
    server = attempt.nodes()[0]["processes"]["inference-0"]
    env = psutil.Process(server["pid"]).environ()
    assert env["SLURMD_NODENAME"] == "node1" and env["SLURM_NODEID"] == "0"
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    status = vft("status", str(attempt.path), check=True).stdout
    assert "slurm-run attempt-1 [slurm]: running" in status

    (attempt.path / "release").touch()
    wait_for(lambda: backend.status(attempt)["status"] == "succeeded", what="the job's end")
    took = time.monotonic() - started
    status = vft("status", str(attempt.path), check=True).stdout
    assert "[slurm]: succeeded, exit code 0" in status
    done = slurm.completed(job_id)  # the job-completion log, for when scontrol forgets
    assert done is not None and (done.state, done.exit_code) == ("COMPLETED", 0)
    logs = vft("logs", str(attempt.path), check=True).stdout
    assert "[trainer-1] trainer reached http://127.0.0.1:" in logs
    listed = vft("outputs", "ls", str(attempt.path), check=True).stdout
    assert "trainer-report-0.json" in listed and "logs/trainer-1.log" in listed
    print(f"2-node job, submit to succeeded: {took:.1f} s")


def test_failure_on_node_two_fails_the_job_with_its_code(project):
    """The trainer on node 2 fails; node 1's server is then stopped (143): the run says 1.

    The script exits 3 under `accelerate launch`, which itself exits 1: that is the code
    of the plan's process, and the one the run reports, not the 143 Slurm's step has.
    """
    from vft_slurm import slurm

    recipe = write_recipe(project, trainer_args=["--exit-code", "3"])
    _, attempt, code = launch(recipe, detach=False)
    assert code == 1
    status = vft("status", str(attempt.path), check=True).stdout
    assert "[slurm]: failed, exit code 1" in status
    assert "failed: trainer-1: exited with code 1" in status
    assert "exitcode  : 3" in attempt.log_path("trainer-1").read_text()
    nodes = attempt.nodes()
    assert nodes[1]["status"] == "failed"
    # node 0 only serves: the trainer node tells it (exit 1), unless srun's kill came first
    assert (nodes[0]["status"], nodes[0]["exit_code"]) in {("failed", 1), ("stopped", 143)}
    info = slurm.job(attempt.record()["slurm_job_id"])
    assert (info.state, info.exit_code) == ("FAILED", 1)


def test_failure_on_node_one_through_vft_run(project):
    """`vft run --backend slurm`: the server on node 1 dies with 5; the run exits 5."""
    recipe = write_recipe(project, extra_args=["--exit-after", "1", "--exit-code", "5"])
    out = vft("run", str(recipe), "--backend", "slurm")
    assert out.returncode == 5, out.stderr
    assert "submitted Slurm job" in out.stderr
    assert "inference-0 failed: exited with code 5" in out.stdout
    status = vft("status", "slurm-run", "--output-dir", str(project / "outputs"), check=True)
    assert "[slurm]: failed, exit code 5" in status.stdout
    assert "failed: inference-0: exited with code 5" in status.stdout


def test_stop_cancels_and_leaves_nothing_running(project, no_leftovers):
    from vft_slurm import slurm

    from vft.testing import processes_with

    recipe = write_recipe(project, trainer_args=["--hold", "never"])
    _, attempt, _ = launch(recipe, detach=True)
    wait_for((attempt.path / "trainer-report-0.json").exists, what="the trainer to run")
    assert len(processes_with(no_leftovers)) >= 3  # agents, server, accelerate, trainer
    out = vft("stop", str(attempt.path), check=True)
    assert "slurm-run attempt-1: stopped" in out.stdout
    assert processes_with(no_leftovers) == []  # on every node, at once: stop waited for it
    info = slurm.job(attempt.record()["slurm_job_id"])
    assert info.state == "CANCELLED" and not info.active
    assert "[slurm]: stopped" in vft("status", str(attempt.path), check=True).stdout


def test_more_gpus_than_the_cluster_has_is_refused_in_one_line(project):
    recipe = write_recipe(project, gpus="T4:3", inference_gpus=3)  # the nodes have 2 each
    out = vft("run", str(recipe), "--backend", "slurm")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("vft: error: slurm: the cluster cannot run this job: ")
    assert "Requested node configuration is not available" in lines[0]
    assert not (project / "outputs").exists()  # nothing half-started


def test_trainer_nodes_rendezvous_by_resolved_address(project):
    """Three nodes: the server on node 1, one trainer process on each of nodes 2 and 3.

    accelerate's --main_process_ip is the plan's {{node_addr:1}}, filled from Slurm's node
    list on each node; the two processes meet there and all-reduce a tensor over gloo.
    Needs a cluster of three nodes: VFT_SLURM_NODES=3 scripts/slurm-test-cluster.sh start.
    """
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True)
    if len(set(nodes.stdout.split())) < 3:
        pytest.skip("needs 3 Slurm nodes: VFT_SLURM_NODES=3 scripts/slurm-test-cluster.sh start")
    recipe = write_recipe(project, nodes=3, trainer_args=["--all-reduce"])
    _, attempt, code = launch(recipe, detach=False)
    assert code == 0
    plan = attempt.plan()
    trainer = next(p for p in plan.processes if p.name == "trainer-2")
    assert "{{node_addr:1}}" in trainer.argv  # resolved at run time, not at plan time
    reports = [json.loads((attempt.path / f"trainer-report-{r}.json").read_text()) for r in (0, 1)]
    assert [r["SLURMD_NODENAME"] for r in reports] == ["node2", "node3"]
    assert [r["VFT_NODE_RANK"] for r in reports] == ["1", "2"]
    assert {r["MASTER_ADDR"] for r in reports} == {attempt.nodes()[1]["address"]}
    assert [(r["world_size"], r["all_reduce"]) for r in reports] == [(2, 3.0), (2, 3.0)]
    assert all(r["models"] == ["vft-tiny"] for r in reports)
