"""`vft run` up to the launch: preflight, port moves, dry runs, attempts, dispatch by backend."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from vft.cli import cli
from vft.testing import free_port, run_vft

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / "examples" / "recipes" / "smoke.toml")
GPU = "resources.gpus=A100-80GB:2"


def error_line(stderr: str) -> str:
    """The one error line (a note that a busy port was moved may come before it)."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("vft: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_dry_run_writes_the_attempt_and_a_relaunch_makes_attempt_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = invoke("run", SMOKE, "--dry-run")
    assert first.exit_code == 0, first.stderr
    assert "accelerate launch" in first.stdout  # the plan, shown
    assert "dry run: nothing started" in first.stderr
    second = invoke("run", SMOKE, "--dry-run")
    assert "attempt-2" in second.stderr
    run = tmp_path / "outputs" / "smoke"
    assert sorted(p.name for p in run.iterdir()) == ["attempt-1", "attempt-2"]
    attempt = run / "attempt-2"
    assert (attempt / "plan.json").is_file() and (attempt / "accelerate.yaml").is_file()
    assert json.loads((attempt / "run.json").read_text())["status"] == "dry-run"
    assert not (attempt / "logs").exists()  # nothing started
    listed = invoke("runs")
    assert "smoke" in listed.stdout and "dry-run" in listed.stdout


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU driver")
def test_gpu_plan_is_refused_on_a_machine_without_gpus(tmp_path):
    refused = run_vft("run", SMOKE, "--set", GPU, cwd=tmp_path)
    assert refused.returncode == 2
    assert error_line(refused.stderr) == (
        "vft: error: resources.gpus: the plan needs 2 x A100-80GB but this machine has no "
        "usable NVIDIA GPU: nvidia-smi not found on PATH (use another backend, see vft backends; "
        "or --force to launch anyway)"
    )
    assert not (tmp_path / "outputs").exists()  # nothing half-started
    forced = run_vft("run", SMOKE, "--set", GPU, "--force", "--dry-run", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "--force: going on although resources.gpus" in forced.stderr
    assert (tmp_path / "outputs" / "smoke" / "attempt-1" / "plan.json").is_file()


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU driver")
def test_a_dry_run_works_without_gpus_and_says_what_a_real_run_would_refuse(tmp_path):
    """--dry-run starts nothing, so it needs no GPU: it plans, writes the attempt, shows
    the plan and reports the preflight's refusal as a line, with the refusal's exit code
    (2), so that a script checking a recipe with --dry-run learns it would fail here."""
    dry = run_vft("run", SMOKE, "--set", GPU, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 2, dry.stderr
    assert "Traceback" not in dry.stderr and "accelerate launch" in dry.stdout
    assert (
        "vft: a real run would stop here: resources.gpus: the plan needs 2 x A100-80GB but this "
        "machine has no usable NVIDIA GPU: nvidia-smi not found on PATH"
    ) in dry.stderr
    assert dry.stderr.splitlines()[-1] == "vft: dry run: nothing started"
    record = json.loads((tmp_path / "outputs" / "smoke" / "attempt-1" / "run.json").read_text())
    assert record["status"] == "dry-run"


def test_run_commands_take_the_backend_option_like_vft_run(tmp_path):
    """`-b` as in `vft run -b modal`: accepted by status, logs, stop and outputs; it must
    agree with the backend the run's record names."""
    dry = run_vft("run", SMOKE, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    for args in (("status",), ("logs",), ("stop",), ("outputs", "ls")):
        same = run_vft(*args, "smoke", "-b", "local", cwd=tmp_path)
        assert same.returncode == 0, (args, same.stderr)
        other = run_vft(*args, "--backend", "modal", "smoke", cwd=tmp_path)
        assert other.returncode == 2, (args, other.stderr)
        assert error_line(other.stderr) == (
            "vft: error: --backend: smoke attempt-1 ran on 'local', not 'modal' "
            "(leave out -b to use the backend its run.json records)"
        )
    got = run_vft("outputs", "get", "smoke", tmp_path / "copy", "-b", "local", cwd=tmp_path)
    assert got.returncode == 0 and (tmp_path / "copy" / "plan.json").is_file(), got.stderr


def fake_nvidia_smi(bin_dir: Path, gpus: list[str], apps: list[str]) -> None:
    (bin_dir / "gpus.csv").write_text("".join(f"{g}\n" for g in gpus))
    (bin_dir / "apps.csv").write_text("".join(f"{a}\n" for a in apps))
    script = bin_dir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        f'  --query-gpu*) cat "{bin_dir}/gpus.csv" ;;\n'
        f'  --query-compute-apps*) cat "{bin_dir}/apps.csv" ;;\n'
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


A100 = "NVIDIA A100-SXM4-80GB, 81920"


@pytest.mark.parametrize(
    ("gpus", "apps", "visible", "expect"),
    [
        (
            [f"0, GPU-aaa, {A100}, 80000", f"1, GPU-bbb, {A100}, 30000"],
            ["GPU-bbb, 4242, 50000"],
            None,
            "GPU 1 is busy: pid 4242 (50000 MiB)",
        ),
        (
            [f"0, GPU-aaa, {A100}, 80000"],
            [],
            None,
            "the plan needs 2 x A100-80GB, this machine has 1",
        ),
        (
            [f"0, GPU-aaa, {A100}, 80000", f"1, GPU-bbb, {A100}, 80000"],
            [],
            "1",
            "the plan needs 2 x A100-80GB, this machine has 1 visible",
        ),
        (
            [f"0, GPU-aaa, {A100}, 60000", f"1, GPU-bbb, {A100}, 80000"],
            [],
            None,
            "GPU 0 has 58.6 GiB free, inference needs about 72.0 GiB",
        ),
    ],
    ids=["busy", "too-few", "cuda-visible-devices", "memory"],
)
def test_gpu_preflight_against_a_fake_nvidia_smi(tmp_path, gpus, apps, visible, expect):
    """No GPU here: nvidia-smi is faked (the boundary we cannot reach); the logic is real."""
    fake_nvidia_smi(tmp_path, gpus, apps)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    refused = run_vft("run", SMOKE, "--set", GPU, cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert expect in error_line(refused.stderr)
    assert not (tmp_path / "outputs").exists()  # refused before the attempt folder
    dry = run_vft("run", SMOKE, "--set", GPU, "--dry-run", cwd=tmp_path, env=env)
    assert dry.returncode == 2, dry.stderr  # the refusal's code, after showing the plan
    stop = [x for x in dry.stderr.splitlines() if x.startswith("vft: a real run would stop")]
    assert len(stop) == 1 and expect in stop[0], dry.stderr


def test_gpu_preflight_passes_on_free_gpus_and_maps_cuda_visible_devices(tmp_path, monkeypatch):
    """Fake nvidia-smi (no GPU here); CUDA_VISIBLE_DEVICES=2,3 makes the plan's 0,1 into 2,3."""
    rows = [f"{i}, GPU-{i}, {A100}, 80000" for i in range(4)]
    fake_nvidia_smi(tmp_path, rows, [])
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    from vft.backends.local.backend import LocalBackend
    from vft.core.plan import NodeContext
    from vft.launch import prepare

    ports = {key: free_port() for key in ("inference", "weight_sync", "rendezvous")}
    plan = prepare(SMOKE, (GPU,), "local", ports=ports).plan
    notes = LocalBackend().check(plan)
    assert notes[0] == "GPUs: 2 visible (NVIDIA A100-SXM4-80GB), the plan uses 2"
    ctx = NodeContext.here(0, ("127.0.0.1",), str(tmp_path))
    devices = {p.name: p.resolved(ctx).env["CUDA_VISIBLE_DEVICES"] for p in plan.processes}
    assert devices == {"inference": "2", "trainer": "3"}


def test_a_taken_port_is_moved_and_the_plan_says_so(tmp_path):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past a TIME_WAIT
    try:
        holder.bind(("0.0.0.0", 29500))
        holder.listen()
    except OSError:
        pass  # already taken by someone else: just as good
    try:
        moved = run_vft("run", SMOKE, "--dry-run", cwd=tmp_path)
    finally:
        holder.close()
    assert moved.returncode == 0, moved.stderr
    line = next(x for x in moved.stderr.splitlines() if "is taken" in x)
    new_port = line.rsplit(" ", 1)[-1]
    assert line.startswith("vft: port 29500 (rendezvous) is taken; using ")
    plan = json.loads((tmp_path / "outputs" / "smoke" / "attempt-1" / "plan.json").read_text())
    argv = plan["processes"][0]["argv"]
    assert argv[argv.index("--main_process_port") + 1] == new_port


def test_commands_dispatch_through_the_recorded_backend(tmp_path):
    attempt = tmp_path / "outputs" / "r" / "attempt-1"
    attempt.mkdir(parents=True)
    (attempt / "run.json").write_text(json.dumps({"backend": "elsewhere", "status": "running"}))
    for command in ("status", "logs", "stop"):
        out = run_vft(command, "r", cwd=tmp_path)
        assert out.returncode == 2
        assert out.stderr.startswith("vft: error: --backend: unknown backend 'elsewhere'")


def test_unknown_run_is_one_line(tmp_path):
    out = run_vft("status", "nope", cwd=tmp_path)
    assert (out.returncode, out.stderr) == (
        2,
        "vft: error: run 'nope' not found under outputs/ (runs: none)\n",
    )
    (tmp_path / "outputs" / "gsm8k-lr1e-6" / "attempt-1").mkdir(parents=True)
    out = run_vft("logs", "gsm8k-lr1e6", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert out.stderr.endswith("did you mean 'gsm8k-lr1e-6'?\n")


def _train_with_fixture(*args: str) -> list[str]:
    trainer = str(REPO / "tests" / "fixtures" / "procs" / "trainer.py")
    return ["--set", f"trainer.script={trainer}", "--set", f"trainer.args={json.dumps(args)}"]


@pytest.mark.slow
def test_vft_run_end_to_end_reports_the_trainers_exit_code(tmp_path, no_leftovers):
    """The planner's own argv (accelerate launch ... script) run by `vft run`, for real."""
    out = run_vft(
        "run",
        SMOKE,
        *_train_with_fixture("--steps", "1", "--exit", "3"),
        cwd=tmp_path,
        env={"VFT_TEST_TOKEN": no_leftovers},
    )
    # accelerate's launcher turns the script's 3 into its own failure code
    assert out.returncode != 0, out.stderr
    assert "[vft]     trainer failed: exited with code" in out.stdout
    assert "trainer: RuntimeError: fixture failure, exiting 3" in out.stdout  # in the tail
    record = json.loads((tmp_path / "outputs" / "smoke" / "attempt-1" / "run.json").read_text())
    assert (record["status"], record["exit_code"]) == ("failed", out.returncode)


@pytest.mark.slow
def test_ctrl_c_to_vft_run_stops_accelerate_and_its_workers(tmp_path, no_leftovers):
    import signal
    import time

    vft = subprocess.Popen(
        [sys.executable, "-m", "vft", "run", SMOKE, *_train_with_fixture("--steps", "10000")],
        cwd=tmp_path,
        env={**os.environ, "VFT_TEST_TOKEN": no_leftovers},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log = tmp_path / "outputs" / "smoke" / "attempt-1" / "logs" / "trainer.log"
    deadline = time.monotonic() + 60
    while "step 1/" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline and vft.poll() is None, "training never started"
        time.sleep(0.1)
    vft.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground vft
    out, _ = vft.communicate(timeout=30)
    assert vft.returncode == 130, out
    assert "received SIGINT: stopping" in out
    assert "vft: run smoke attempt-1 stopped (exit code 130); files: " in out  # not "failed"
    # no_leftovers then checks that accelerate and the script it spawned are gone
