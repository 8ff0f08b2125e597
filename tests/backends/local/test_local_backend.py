"""The local backend: detach + status + logs + stop through the CLI, relaunch, outputs, install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vft.backends.local.backend import LocalBackend
from vft.core.errors import UserError
from vft.core.node.install import install, installed_from
from vft.core.runs.folders import run_folder
from vft.testing import wait_gone

REPO = Path(__file__).resolve().parents[3]


def vft(*args: str, output_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vft", *args, "--output-dir", str(output_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli(*args: str, output_dir: Path) -> subprocess.CompletedProcess[str]:
    """The same command in-process (the subprocess form costs a Python start-up each)."""
    from click.testing import CliRunner

    from vft.cli import cli as vft_cli

    result = CliRunner().invoke(
        vft_cli, [*args, "--output-dir", str(output_dir)], catch_exceptions=False
    )
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def wait_for(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_detach_status_logs_stop_round_trip_and_relaunch(
    proc, make_plan, new_attempt, output_dir, port
):
    plan = make_plan(
        proc("inference", "server.py", "--port", port, "--delay", "0.3", role="inference"),
        proc("trainer", "trainer.py", "--wait-port", port, "--steps", "2000", "--step-s", "0.02"),
        name="detached",
    )
    attempt = new_attempt(plan)
    started = time.monotonic()
    assert LocalBackend().launch(plan, attempt, detach=True) == 0
    assert time.monotonic() - started < 2  # returns at once
    wait_for(lambda: "step 3/" in _read(attempt.log_path("trainer")), what="training steps")

    status = cli("status", "detached", output_dir=output_dir)
    assert status.returncode == 0, status.stderr
    assert "detached attempt-1 [local]: running" in status.stdout
    assert "trainer" in status.stdout and "inference" in status.stdout

    logs = cli("logs", "detached", "--process", "trainer", output_dir=output_dir)
    assert logs.returncode == 0 and "trainer: step 1/2000" in logs.stdout
    merged = cli("logs", "detached", output_dir=output_dir)
    assert "[inference] server: healthy" in merged.stdout
    assert "[trainer] trainer: step 1/2000" in merged.stdout

    follower = subprocess.Popen(
        [sys.executable, "-m", "vft", "logs", "detached", "-f", "--output-dir", str(output_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    pids = [p["pid"] for p in attempt.node(0)["processes"].values()]
    pids.append(attempt.record()["supervisor_pid"])
    stop = cli("stop", "detached", output_dir=output_dir)
    assert stop.returncode == 0, stop.stderr
    assert "detached attempt-1: stopped" in stop.stdout
    assert wait_gone(pids, timeout=2) == []
    followed, _ = follower.communicate(timeout=15)  # -f ends once the run has ended
    assert follower.returncode == 0
    assert "[vft] " in followed and "received SIGTERM" in followed

    assert attempt.record()["status"] == "stopped"
    assert cli("stop", "detached", output_dir=output_dir).stdout.strip().endswith("(stopped)")
    runs = cli("runs", output_dir=output_dir)
    assert "detached" in runs.stdout and "stopped" in runs.stdout

    # relaunch: a new attempt, the first one's logs untouched
    before = attempt.log_path("trainer").read_bytes()
    second = run_folder(output_dir, "detached").new_attempt(
        make_plan(proc("trainer", "trainer.py", "--steps", "1"), name="detached"), "local"
    )
    assert second.path.name == "attempt-2"
    assert LocalBackend().launch(second.plan(), second, detach=False) == 0
    assert attempt.log_path("trainer").read_bytes() == before
    assert "detached attempt-2 [local]: succeeded, exit code 0" in (
        cli("status", "detached", output_dir=output_dir).stdout
    )


def test_logs_follow_ends_with_the_run(proc, make_plan, new_attempt, output_dir):
    plan = make_plan(proc("trainer", "trainer.py", "--steps", "10", "--step-s", "0.1"), name="f")
    attempt = new_attempt(plan)
    assert LocalBackend().launch(plan, attempt, detach=True) == 0
    followed = vft("logs", "f", "-f", "-p", "trainer", output_dir=output_dir, timeout=30)
    assert followed.returncode == 0
    assert "trainer: step 10/10" in followed.stdout.splitlines()[-1]
    wait_for(lambda: attempt.record().get("status") == "succeeded", what="the record")


def test_status_of_a_run_whose_supervisor_died_is_lost(make_plan, new_attempt):
    attempt = new_attempt(make_plan(name="lost"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    attempt.update(status="running", supervisor_pid=dead.pid, supervisor_create_time=1.0)
    assert LocalBackend().status(attempt)["status"] == "lost"


def test_unknown_process_for_logs_is_one_line(make_plan, new_attempt, output_dir, proc):
    new_attempt(make_plan(proc("trainer", "trainer.py"), name="x"))
    logs = vft("logs", "x", "--process", "nope", output_dir=output_dir)
    assert logs.returncode == 2
    assert logs.stderr.strip() == (
        "vft: error: --process: 'nope' is not a process of this run; choose from trainer, vft"
    )


def test_outputs_ls_and_get(proc, make_plan, new_attempt, output_dir, tmp_path):
    plan = make_plan(proc("trainer", "trainer.py", "--steps", "1"), name="out")
    attempt = new_attempt(plan)
    (attempt.path / "checkpoint-1").mkdir()
    (attempt.path / "checkpoint-1" / "model.bin").write_bytes(b"w" * 1000)
    assert LocalBackend().launch(plan, attempt, detach=False) == 0
    listed = cli("outputs", "ls", "out", output_dir=output_dir)
    assert "checkpoint-1/model.bin" in listed.stdout and "logs/trainer.log" in listed.stdout
    assert ".run.lock" not in listed.stdout
    dest = tmp_path / "dl"
    got = cli(
        "outputs", "get", "out", str(dest), "--prefix", "checkpoint-1/", output_dir=output_dir
    )
    assert got.returncode == 0, got.stderr
    assert (dest / "checkpoint-1" / "model.bin").read_bytes() == b"w" * 1000
    assert not (dest / "logs").exists()


def test_install_skips_a_package_already_installed_from_that_path(tmp_path, monkeypatch):
    """Never reinstalls the checkout into the test environment: the install cache is a
    fresh file here, so an edit to pyproject.toml since an earlier run does not count."""
    from vft.core.node import install as install_module

    monkeypatch.setattr(install_module, "_cache_path", lambda: tmp_path / "cache.json")
    assert installed_from(REPO) == "vft"  # the checkout is installed editable
    started = time.monotonic()
    notes = install([str(REPO)], tmp_path / "install.log")
    assert notes == [f"environment.install: {REPO} already installed (vft)"]
    assert time.monotonic() - started < 3


def test_install_failure_is_one_line_pointing_at_the_log(tmp_path):
    empty = tmp_path / "not-a-package"
    empty.mkdir()
    with pytest.raises(UserError) as err:
        install([str(empty)], tmp_path / "logs" / "install.log")
    assert "pip install -e" in err.value.line() and "install.log" in err.value.line()
    assert "pip install" in (tmp_path / "logs" / "install.log").read_text()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def test_detached_record_names_the_supervisor(proc, make_plan, new_attempt):
    plan = make_plan(proc("trainer", "trainer.py", "--steps", "1"), name="rec")
    attempt = new_attempt(plan)
    LocalBackend().launch(plan, attempt, detach=True)
    wait_for(lambda: attempt.record().get("status") == "succeeded", what="the run to end")
    record = json.loads((attempt.path / "run.json").read_text())
    assert record["detached"] is True and record["supervisor_pid"] != os.getpid()
    assert record["exit_code"] == 0 and record["backend"] == "local"


def test_a_program_this_machine_lacks_is_refused_before_a_run_folder_exists(
    proc, make_plan, tmp_path
):
    """As a planning-only install (no `accelerate`) would be: one line naming the command
    and where to look, instead of exit 127 from the supervisor after the folder exists."""
    from dataclasses import replace

    from vft.core.errors import PreflightError

    present = proc("trainer", "trainer.py")
    absent = replace(present, name="server", argv=("vft-no-such-program-4f2a", "serve"))
    plan = make_plan(present, absent)
    with pytest.raises(PreflightError) as err:
        LocalBackend().check(plan)
    line = err.value.line()
    assert "\n" not in line
    assert "server: command 'vft-no-such-program-4f2a' not found" in line
    assert "(looked beside python and on PATH)" in line and "vft doctor" in line
    assert "trainer: command" not in line  # the one found is fine
    assert LocalBackend().check(plan, force=True)  # --force goes on, saying why


def test_a_gpu_plan_without_vllm_names_the_gpu_extra_not_the_cpu_doctor():
    """On a machine without vLLM, a GPU plan's server needs `vft[inference]`; `vft doctor`
    (which checks the CPU stacks) is the fix only for a CPU plan."""
    from dataclasses import replace

    from tests.planning import UNLIMITED, make_plan
    from vft.core.errors import PreflightError

    plan = make_plan(UNLIMITED, resources={"gpus": "A100-80GB:2"})
    gone = tuple(
        replace(p, argv=("vft-no-vllm-here-4f2a", *p.argv[1:])) if p.name == "inference" else p
        for p in plan.processes
    )
    with pytest.raises(PreflightError) as err:
        LocalBackend().check(replace(plan, processes=gone))
    line = err.value.line()
    assert "inference: command 'vft-no-vllm-here-4f2a' not found" in line
    assert "pip install 'vft[inference]'" in line and "vft doctor" not in line
    assert line.endswith("(use another backend, see vft backends; or --force to launch anyway)")
