"""Identity before signals: a pid is signalled only while it is still the recorded process.

A pid alone names whatever process holds that number now, and pids are recycled. Records
keep `(pid, create_time)`; `same` holds only when both match (a record without a start
time matches nothing), and `send` checks through a pidfd opened *before* the check, so
the process checked is the process signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

import psutil

TOLERANCE_S = 0.05  # psutil's create_time counts in clock ticks (10 ms)


def create_time(pid: int) -> float | None:
    """`pid`'s start time as psutil reports it, or None when it is gone."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def same(pid: Any, created: Any) -> bool:
    """Whether `pid` runs (not a zombie) and started at `created`."""
    if not _valid(pid) or not isinstance(created, int | float) or isinstance(created, bool):
        return False
    try:
        proc = psutil.Process(pid)
        return (
            abs(proc.create_time() - created) <= TOLERANCE_S
            and proc.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.Error:
        return False


def send(pid: Any, created: Any, sig: int) -> bool:
    """Send `sig` to `pid` only if it is the process that started at `created`; True if sent."""
    if not _valid(pid):
        return False
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # gone, or no pidfd here: check, then kill
        if not same(pid, created):
            return False
        try:
            os.kill(pid, sig)
        except OSError:
            return False
        return True
    try:
        if not same(pid, created):
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _valid(pid: Any) -> bool:
    # 0 and negative numbers name process groups to os.kill; never this process
    return isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 and pid != os.getpid()
