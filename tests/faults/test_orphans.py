"""Nothing orphaned: a SIGKILL of vft (foreground or the detached agent), of vft and its
watchdog, or a signal during the environment install, leaves no process of the run
running and no port held, and the record ends in a final state."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from tests import reliability
from vft.backends.local.backend import LocalBackend
from vft.core.runs.folders import FINISHED
from vft.testing import TOKEN_VAR, processes_with

GONE_S = 5.0  # what "at once" means for a tree's end after vft is killed

LAUNCH = """
import sys
from pathlib import Path
from vft.backends.local.backend import LocalBackend
from vft.core.runs import Attempt
attempt = Attempt(Path(sys.argv[1]))
sys.exit(LocalBackend().launch(attempt.plan(), attempt, detach=False))
"""


def foreground(attempt, token: str) -> subprocess.Popen[bytes]:
    """What `vft run` does once planned: the backend's launch, the supervisor in-process."""
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, str(attempt.path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, TOKEN_VAR: token},
    )


def run_plan(proc, make_plan, port, tmp_path, name):
    """A server on `port`, a long trainer, and a launcher whose grandchildren leave its
    group and session (one double-forked away) and ignore SIGTERM."""
    return make_plan(
        proc("inference", "server.py", "--port", port, role="inference"),
        proc("workers", "forker.py", "--pid-file", tmp_path / "forker.pids", role="inference"),
        proc("trainer", "trainer.py", "--steps", "100000", "--step-s", "0.05"),
        name=name,
    )


def wait_for(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def started(attempt, tmp_path) -> bool:
    try:
        procs = attempt.node(0).get("processes", {})
    except ValueError:
        return False
    return len(procs) == 3 and (tmp_path / "forker.pids").exists()


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def gone_within(token: str, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while (left := processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def settle(token: str, attempt, port: int) -> tuple[list, dict]:
    """What is left GONE_S after the kill, and the record once it is final."""
    left = gone_within(token, GONE_S)
    record: dict = {}
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        record = attempt.record()
        if record.get("status") in FINISHED:
            break
        time.sleep(0.05)
    lost = 0 if record.get("status") in FINISHED and record.get("ended_at") else 1
    reliability.case(orphans=len(left), records_lost=lost)
    return left, record


def cli(*args: str, output_dir: Path):
    from vft.cli import cli as vft_cli

    return CliRunner().invoke(
        vft_cli, [*args, "--output-dir", str(output_dir)], catch_exceptions=False
    )


def test_sigkill_of_vft_run_in_the_foreground_leaves_nothing(
    proc, make_plan, new_attempt, port, tmp_path, no_leftovers
):
    attempt = new_attempt(run_plan(proc, make_plan, port, tmp_path, "fg"))
    launcher = foreground(attempt, no_leftovers)
    wait_for(lambda: started(attempt, tmp_path), what="the run to start")
    wait_for(lambda: not port_free(port), what="the server to bind its port")
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(timeout=5)
    killed = time.monotonic()
    left, record = settle(no_leftovers, attempt, port)
    assert left == [], f"orphans: {[(p.pid, p.cmdline()) for p in left]}"
    assert time.monotonic() - killed < GONE_S
    assert port_free(port)
    assert record["status"] == "lost" and record["ended_at"]
    assert "died without stopping the run" in record["failed"]["reason"]
    assert "watchdog: the supervisor" in attempt.log_path("vft").read_text()


def test_sigkill_of_the_detached_agent_leaves_nothing(
    proc, make_plan, new_attempt, port, tmp_path, no_leftovers, monkeypatch
):
    monkeypatch.setenv(TOKEN_VAR, no_leftovers)  # the agent and its watchdog carry it too
    attempt = new_attempt(run_plan(proc, make_plan, port, tmp_path, "agent"))
    assert LocalBackend().launch(attempt.plan(), attempt, detach=True) == 0
    wait_for(lambda: started(attempt, tmp_path), what="the run to start")
    wait_for(lambda: not port_free(port), what="the server to bind its port")
    os.kill(attempt.record()["supervisor_pid"], signal.SIGKILL)
    left, record = settle(no_leftovers, attempt, port)
    assert left == [], f"orphans: {[(p.pid, p.cmdline()) for p in left]}"
    assert port_free(port)
    assert record["status"] == "lost" and record["ended_at"]
    stop = cli("stop", "agent", output_dir=attempt.path.parents[1])
    assert stop.exit_code == 0 and "is not running (lost)" in stop.stdout


def test_vft_stop_ends_what_a_killed_agent_and_watchdog_left(
    proc, make_plan, new_attempt, port, tmp_path, no_leftovers, monkeypatch
):
    monkeypatch.setenv(TOKEN_VAR, no_leftovers)
    attempt = new_attempt(run_plan(proc, make_plan, port, tmp_path, "orphans"))
    assert LocalBackend().launch(attempt.plan(), attempt, detach=True) == 0
    wait_for(lambda: started(attempt, tmp_path), what="the run to start")
    wait_for(lambda: not port_free(port), what="the server to bind its port")
    node = attempt.node(0)
    os.kill(node["watchdog_pid"], signal.SIGKILL)  # both gone: nothing of vft is left
    os.kill(node["supervisor_pid"], signal.SIGKILL)
    time.sleep(0.3)
    assert processes_with(no_leftovers), "the run's processes should outlive both"
    assert LocalBackend().status(attempt)["status"] == "orphaned"
    started_at = time.monotonic()
    stop = cli("stop", "orphans", output_dir=attempt.path.parents[1])
    assert stop.exit_code == 0, stop.output
    assert "orphans attempt-1: stopped" in stop.stdout
    left = gone_within(no_leftovers, 1.0)
    record = attempt.record()
    reliability.case(orphans=len(left), records_lost=0 if record.get("ended_at") else 1)
    assert left == [], f"orphans: {[(p.pid, p.cmdline()) for p in left]}"
    assert time.monotonic() - started_at < 8  # the fixtures' grace is 2 s
    assert port_free(port)
    assert record["status"] == "stopped" and "was gone" in record["note"]


SLOW_BACKEND = """
import os, time
def _hang(*a, **k):
    with open(os.environ["HOOK_PID_FILE"], "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)
    return []
get_requires_for_build_editable = get_requires_for_build_wheel = _hang
prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel = _hang
build_editable = build_wheel = _hang
"""


def test_a_signal_during_the_install_stops_pip_and_records_interrupted(
    proc, make_plan, new_attempt, tmp_path, no_leftovers
):
    pkg = tmp_path / "slow_env"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "slowbackend"\nbackend-path = ["."]\n'
        '[project]\nname = "slow-env"\nversion = "0"\n'
    )
    (pkg / "slowbackend.py").write_text(SLOW_BACKEND)
    plan = make_plan(proc("trainer", "trainer.py"), name="inst")
    attempt = new_attempt(dataclasses.replace(plan, install=(str(pkg),)))
    hook = tmp_path / "hook.pid"
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, str(attempt.path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, TOKEN_VAR: no_leftovers, "HOOK_PID_FILE": str(hook)},
    )
    wait_for(hook.exists, timeout=30, what="pip to reach the build backend")
    launcher.send_signal(signal.SIGTERM)
    _, err = launcher.communicate(timeout=10)
    left = gone_within(no_leftovers, 3.0)
    record = attempt.record()
    reliability.case(orphans=len(left), records_lost=0 if record.get("ended_at") else 1)
    assert left == [], f"orphans: {[(p.pid, p.cmdline()) for p in left]}"
    assert launcher.returncode == 143
    assert record["status"] == "interrupted" and record["exit_code"] == 143
    assert "environment.install interrupted by SIGTERM" in err.decode()
