"""Process trees: start a child in its own session, keep track of every descendant, stop all.

Wrappers (`accelerate`, vLLM's engine core and workers) spawn grandchildren, some of which
leave the child's process group. Three nets catch them: the child's process group, the
psutil tree of each child refreshed while it runs (a snapshot survives re-parenting), and a
marker variable every descendant inherits (`VFT_SUPERVISOR_ID`), scanned at shutdown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil

SUPERVISOR_ID_VAR = "VFT_SUPERVISOR_ID"


def resolve_program(argv0: str, env: Mapping[str, str], cwd: str | None = None) -> str | None:
    """A bare name is looked up next to this Python first (its venv's bin), then on PATH;
    a relative path starts from `cwd`, where the process will run."""
    if os.sep in argv0:
        path = os.path.join(cwd or "", argv0)
        return path if os.access(path, os.X_OK) else None
    beside = Path(sys.executable).parent / argv0
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(argv0, path=env.get("PATH", os.defpath))


def exit_code(returncode: int) -> int:
    """A shell-style code: a child killed by signal N exits 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def spawn(
    argv: list[str], env: Mapping[str, str], out_fd: int, cwd: str | None = None
) -> subprocess.Popen[bytes]:
    """Start argv as the leader of a new session (own process group, no controlling tty).

    Its own session keeps a terminal's Ctrl-C away from it: vft decides how it stops.
    """
    return subprocess.Popen(
        argv,
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=out_fd,
        stderr=out_fd,
        start_new_session=True,
        close_fds=True,
    )


@contextlib.contextmanager
def on_signals(signals: Iterable[int], handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Handle `signals` with `handler` for the duration (main thread only; elsewhere a no-op)."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Trees:
    """Every process started for one node and every descendant seen since."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.known: dict[int, psutil.Process] = {}

    def add(self, pid: int) -> None:
        with contextlib.suppress(psutil.Error):
            self.known.setdefault(pid, psutil.Process(pid))

    def refresh(self, roots: Iterable[int]) -> None:
        for pid in list(roots):
            with contextlib.suppress(psutil.Error):
                for p in psutil.Process(pid).children(recursive=True):
                    self.known.setdefault(p.pid, p)

    def scan_marker(self) -> None:
        """Find descendants that escaped both group and tree (double fork, setsid)."""
        if not self.marker:  # an empty marker would match every process without one
            return
        me = os.getpid()
        for p in psutil.process_iter():
            if p.pid == me or p.pid in self.known:
                continue
            with contextlib.suppress(psutil.Error):
                value = p.environ().get(SUPERVISOR_ID_VAR, "")
                if self.marker in value.split(","):
                    self.known[p.pid] = p

    def alive(self) -> list[psutil.Process]:
        return [p for p in self.known.values() if alive(p)]


def terminate(
    groups: Iterable[int],
    trees: Trees,
    grace: float,
    *,
    hurry: Callable[[], bool] = lambda: False,
) -> float:
    """SIGTERM every group and tree at once, wait once up to `grace`, then SIGKILL the rest.

    `hurry()` turning true (a second Ctrl-C) skips the rest of the grace period.
    Returns the seconds it took.
    """
    start = time.monotonic()
    groups = list(groups)
    trees.refresh([p.pid for p in trees.alive()])
    trees.scan_marker()
    _signal_all(groups, trees, signal.SIGTERM)
    deadline = start + grace
    while time.monotonic() < deadline and not hurry():
        if not trees.alive():  # group members are all in the trees (roots + descendants)
            return time.monotonic() - start
        # whatever the dying processes spawn in the meantime is caught too
        trees.refresh([p.pid for p in trees.alive()])
        time.sleep(0.02)
    trees.refresh([p.pid for p in trees.alive()])
    trees.scan_marker()
    _signal_all(groups, trees, signal.SIGKILL)
    # poll, never psutil.wait_procs: it would waitpid() our own children and steal
    # their exit status from the Popen objects that report it
    deadline = time.monotonic() + 5
    while trees.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    return time.monotonic() - start


def _signal_all(groups: list[int], trees: Trees, sig: signal.Signals) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for p in trees.alive():
        with contextlib.suppress(psutil.Error):
            p.send_signal(sig)
