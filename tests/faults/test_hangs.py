"""No hang: a log that cannot be written never blocks a child, and no wait is endless."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from tests import reliability
from vft.core.secrets import Redactor
from vft.testing import TOKEN_VAR, processes_with

MIB = 1 << 20


def feed(fd: int, total: int) -> threading.Thread:
    """Write `total` bytes of log lines into `fd` (blocks if nobody drains it), then close."""

    def run() -> None:
        line = b"x" * 99 + b"\n"
        try:
            for _ in range(total // len(line)):
                os.write(fd, line * 1)
        except OSError:
            pass
        finally:
            os.close(fd)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_relay_drains_on_when_the_disk_is_full():
    from vft.core.node.logrelay import make_pipe, relay

    said: list[str] = []
    read_fd, write_fd = make_pipe()
    writer = feed(write_fd, 4 * MIB)  # four times the pipe: a relay that stops blocks it
    thread = relay("trainer", read_fd, "/dev/full", Redactor([]), None, said.append)
    writer.join(10)
    thread.join(5)
    hung = writer.is_alive() or thread.is_alive()
    if hung:
        os.close(read_fd)  # let the writer go
    reliability.case()
    assert not hung, "the writer blocked on a relay that stopped draining"
    assert said == ["logs: disk full at /dev/full — run continues"]


EFBIG = """
import os, resource, sys, threading
from vft.core.node.logrelay import make_pipe, relay
from vft.core.secrets import Redactor
resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))  # EFBIG past 64 KiB
said = []
r, w = make_pipe()
thread = relay("trainer", r, sys.argv[1], Redactor([]), None, said.append)
line = b"y" * 99 + b"\\n"
for _ in range((4 << 20) // len(line)):
    os.write(w, line)
os.close(w)
thread.join(5)
print(said)
"""


def test_the_relay_drains_on_past_the_file_size_limit(tmp_path):
    log = tmp_path / "trainer.log"
    try:
        done = subprocess.run(
            [sys.executable, "-c", EFBIG, str(log)], capture_output=True, text=True, timeout=15
        )
        hung = False
    except subprocess.TimeoutExpired:
        hung = True
    reliability.case()
    assert not hung, "the child blocked once its log reached the file size limit"
    assert done.returncode == 0, done.stderr
    assert "reached the largest file allowed here — run continues" in done.stdout
    assert log.stat().st_size == 64 << 10


def agent(attempt, token: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "vft.core.node", str(attempt.path), "--no-echo"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, TOKEN_VAR: token},
    )


def finish(node: subprocess.Popen[bytes], timeout: float) -> tuple[int | None, str]:
    """The agent's exit code, or None (it hung: killed, and its tree with it)."""
    try:
        _, err = node.communicate(timeout=timeout)
        return node.returncode, err.decode()
    except subprocess.TimeoutExpired:
        node.kill()
        node.wait()
        return None, ""


def test_a_run_whose_log_is_on_a_full_disk_ends(proc, make_plan, new_attempt, no_leftovers):
    plan = make_plan(proc("trainer", "flood.py", "--mb", "4"), name="full")
    attempt = new_attempt(plan)
    attempt.logs_dir.mkdir(parents=True, exist_ok=True)
    log = attempt.log_path("trainer")
    log.symlink_to("/dev/full")  # every write: ENOSPC
    started = time.monotonic()
    code, _ = finish(agent(attempt, no_leftovers), timeout=15)
    took = time.monotonic() - started
    record = attempt.record()
    reliability.case(records_lost=0 if record.get("status") == "succeeded" else 1)
    assert code == 0, "the run hung (or failed) once its log could not be written"
    assert took < 15
    assert record["status"] == "succeeded" and record["exit_code"] == 0
    events = attempt.log_path("vft").read_text()
    assert events.count(f"logs: disk full at {log} — run continues") == 1


@pytest.mark.parametrize("grace", [float("inf"), float("nan")])
def test_an_endless_stop_grace_is_refused_before_anything_starts(
    proc, make_plan, new_attempt, tmp_path, no_leftovers, grace
):
    pid_file = tmp_path / "stubborn.pid"
    plan = make_plan(
        proc("inference", "stubborn.py", "--pid-file", pid_file, role="inference"),
        proc("trainer", "trainer.py", "--exit", "1", "--steps", "1"),
        stop_grace_s=grace,  # as a hand-edited plan.json could say
    )
    attempt = new_attempt(plan)
    started = time.monotonic()
    code, err = finish(agent(attempt, no_leftovers), timeout=15)
    left = processes_with(no_leftovers)
    record = attempt.record()
    reliability.case(orphans=len(left), records_lost=0 if record.get("ended_at") else 1)
    assert code == 2, "an endless grace was waited out (or the run hung)"
    assert time.monotonic() - started < 10
    assert "run.stop_grace_s is" in err and "not a finite number of seconds" in err
    assert not pid_file.exists() and left == []
    assert record["status"] == "failed" and "run.stop_grace_s" in record["failed"]["reason"]


def test_a_huge_grace_is_capped():
    from vft.core.node.limits import MAX_STOP_GRACE_S, seconds

    assert seconds("run.stop_grace_s", 2, MAX_STOP_GRACE_S) == (2.0, None)
    value, note = seconds("run.stop_grace_s", 1e12, MAX_STOP_GRACE_S)
    assert value == MAX_STOP_GRACE_S and note and "using 600 s" in note
    for bad in (float("inf"), float("-inf"), float("nan"), -1, "10", None, True):
        with pytest.raises(ValueError):
            seconds("run.stop_grace_s", bad, MAX_STOP_GRACE_S)
    reliability.case()
