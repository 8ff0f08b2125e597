"""What is left of a run whose supervisor is gone: found by identity, stopped in order.

Used by the watchdog (the supervisor died) and by `vft stop` on a lost run. A process is
the run's when its environment carries the supervisor's marker (`VFT_SUPERVISOR_ID`, which
every descendant inherits), or when it is in the process group of a recorded process that
is still that process (pid and start time both match) — which catches one that cleared its
environment. Nothing else is ever signalled.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Any

from vft.core.node.identity import same
from vft.core.node.procs import Trees, terminate


def roots_of(node: dict[str, Any]) -> list[tuple[int, float]]:
    """(pid, create_time) of each process a node record lists."""
    found = []
    for info in (node.get("processes") or {}).values():
        if isinstance(info, dict):
            pid, created = info.get("pid"), info.get("create_time")
            if isinstance(pid, int) and isinstance(created, int | float):
                found.append((pid, float(created)))
    return found


def find(marker: str | None, roots: Iterable[tuple[int, float]]) -> tuple[Trees, list[int]]:
    """The run's live processes (with their descendants) and the process groups they lead."""
    trees = Trees(marker or "")
    groups = []
    for pid, created in roots:
        if same(pid, created):
            trees.add(pid)
            with contextlib.suppress(OSError):
                if os.getpgid(pid) == pid:
                    groups.append(pid)
    trees.scan_marker()
    trees.refresh([p.pid for p in trees.alive()])
    return trees, groups


def stop(marker: str | None, roots: Iterable[tuple[int, float]], grace: float) -> list[int]:
    """Stop what is left (SIGTERM, `grace`, SIGKILL); the pids found."""
    trees, groups = find(marker, roots)
    found = sorted(p.pid for p in trees.alive())
    if found:
        terminate(groups, trees, grace)
    return found
