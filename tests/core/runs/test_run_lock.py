"""run.json's lock file: taken for each update, removed when released, never two holders."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from vft.core.runs.folders import LOCK_FILE, Attempt


def _bump(path: str, key: str) -> None:
    attempt = Attempt(Path(path))
    for i in range(40):
        attempt.update(**{f"{key}{i}": i})


def test_no_lock_file_is_left_in_the_attempt_folder(make_plan, new_attempt):
    attempt = new_attempt(make_plan())
    attempt.update(status="running")
    assert not (attempt.path / LOCK_FILE).exists()
    assert sorted(p.name for p in attempt.path.iterdir()) == ["plan.json", "run.json"]


def test_many_writers_lose_nothing_while_the_lock_file_comes_and_goes(make_plan, new_attempt):
    """Three writers or more are what removing the file could break (a waiter on the old
    file and a newcomer on a new one): every field must still arrive."""
    attempt = new_attempt(make_plan())
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_bump, args=(str(attempt.path), k)) for k in "abcd"]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    record = attempt.record()
    assert all(f"{k}{i}" in record for k in "abcd" for i in range(40))
    assert not (attempt.path / LOCK_FILE).exists()


WAITER = "import sys, pathlib; from vft.core.runs.folders import Attempt; Attempt(pathlib.Path(sys.argv[1])).update(waiter='done')"


def _hold(path: Path) -> int:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _blocked_on_a_lock(pid: int) -> bool:
    """Whether `pid` waits for an flock now (Linux lists waiters in /proc/locks as `->`)."""
    return any(
        line.split()[1:3] == ["->", "FLOCK"] and line.split()[5] == str(pid)
        for line in Path("/proc/locks").read_text().splitlines()
    )


def _wait_until(check: Callable[[], bool], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_waiter_whose_lock_file_was_removed_waits_for_the_new_one(make_plan, new_attempt):
    """The race, step by step: a holder removes the file while a writer waits on it, and
    a newcomer locks a new file at the same path. The waiter must not write until the
    newcomer lets go (a real process: a forked one would share this one's lock)."""
    attempt = new_attempt(make_plan())
    lock = attempt.path / LOCK_FILE
    first = _hold(lock)
    waiter = subprocess.Popen([sys.executable, "-c", WAITER, str(attempt.path)])
    try:
        assert _wait_until(lambda: _blocked_on_a_lock(waiter.pid))  # on the first file
        lock.unlink()
        newcomer = _hold(lock)  # a new file at the path, locked
        os.close(first)  # the waiter gets the removed file's lock: it must start over
        assert _wait_until(lambda: _blocked_on_a_lock(waiter.pid))  # now on the new one
        time.sleep(0.2)
        assert waiter.poll() is None and "waiter" not in attempt.record()
        os.close(newcomer)
        assert waiter.wait(15) == 0
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert attempt.record()["waiter"] == "done"
    assert not lock.exists()
