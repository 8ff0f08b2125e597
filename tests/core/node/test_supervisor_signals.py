"""Signals sent to the vft process itself (the node entry (`python -m vft.core.node`), the supervisor's CLI form)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from vft.testing import wait_gone


def start_agent(attempt, tmp_path, no_leftovers):
    out = open(tmp_path / "agent.out", "wb")  # noqa: SIM115
    agent = subprocess.Popen(
        [sys.executable, "-m", "vft.core.node", str(attempt.path), "--node-rank", "0"],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "VFT_TEST_TOKEN": no_leftovers},
    )
    out.close()
    return agent


def wait_started(attempt, names, timeout=15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs = attempt.node(0).get("processes", {})
        logs = [attempt.log_path(n) for n in names]
        if set(names) <= set(procs) and all(p.exists() and p.stat().st_size for p in logs):
            return procs
        time.sleep(0.05)
    raise AssertionError(f"processes {names} did not start: {attempt.node(0)}")


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_signal_to_vft_stops_everything_in_order(
    proc, make_plan, new_attempt, port, tmp_path, no_leftovers, sig, code
):
    plan = make_plan(
        proc("inference", "server.py", "--port", port, role="inference"),
        proc("trainer", "trainer.py", "--steps", "1000"),
    )
    attempt = new_attempt(plan)
    agent = start_agent(attempt, tmp_path, no_leftovers)
    procs = wait_started(attempt, ["inference", "trainer"])
    agent.send_signal(sig)
    assert agent.wait(timeout=15) == code
    assert wait_gone([p["pid"] for p in procs.values()], timeout=1) == []
    record = attempt.record()
    assert record["status"] == "stopped" and record["exit_code"] == code
    assert f"received {signal.Signals(sig).name}" in attempt.log_path("vft").read_text()


def test_second_ctrl_c_kills_without_waiting_for_the_grace(
    proc, make_plan, new_attempt, tmp_path, no_leftovers
):
    pid_file = tmp_path / "stubborn.pid"
    plan = make_plan(
        proc("inference", "stubborn.py", "--pid-file", pid_file, role="inference"),
        proc("trainer", "trainer.py", "--steps", "1000"),
        stop_grace_s=60,
    )
    attempt = new_attempt(plan)
    agent = start_agent(attempt, tmp_path, no_leftovers)
    wait_started(attempt, ["inference", "trainer"])
    agent.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 10
    while "stubborn: ignoring SIGTERM" not in attempt.log_path("inference").read_text():
        assert time.monotonic() < deadline, "the first Ctrl-C did not reach the tree"
        time.sleep(0.05)
    assert agent.poll() is None  # still inside the 60 s grace
    started = time.monotonic()
    agent.send_signal(signal.SIGINT)
    assert agent.wait(timeout=10) == 130
    assert time.monotonic() - started < 5
    assert wait_gone([int(pid_file.read_text())], timeout=1) == []
