"""Port reservations: two runs started together on one machine never pick the same port.

"Free" is a fact of one moment: between one `vft run` finding a port free and its server
binding it, a second `vft run` finds it free too. So every choice is made under an flock
on a per-user table of the ports runs have chosen, each with its owner's (pid, start time):
a port is taken when it is bound, or reserved by another owner still alive. The launcher
owns its ports until it hands them to the run's supervisor (detached: the agent), so they
stay reserved for the whole run and are free again once the owner has ended, however it
ended (a kill -9 leaves a stale line, never a held port).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from vft.backends.local.preflight import LOCAL_PORT_KEYS, port_free
from vft.core.node.identity import create_time, same
from vft.core.plan import Ports

TABLE = "ports.json"


def runtime_dir() -> Path:
    """This user's folder for machine-wide state: $XDG_RUNTIME_DIR/vft, else /tmp/vft-UID."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base) and os.access(base, os.W_OK):
        path = Path(base) / "vft"
    else:
        path = Path(tempfile.gettempdir()) / f"vft-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_uid != os.getuid():  # someone else's folder in a shared /tmp
        raise PermissionError(f"{path} belongs to another user")
    return path


@contextlib.contextmanager
def table() -> Iterator[dict[str, dict[str, Any]]]:
    """The reservation table, locked; what the block leaves in it is written back."""
    folder = runtime_dir()
    fd = os.open(folder / "ports.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held = _read(folder / TABLE)
        # a line whose owner has ended is no reservation
        held = {port: v for port, v in held.items() if _owner_alive(v)}
        yield held
        tmp = folder / f".{TABLE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(held, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, folder / TABLE)
    finally:
        os.close(fd)


def reserve(requested: Ports, is_free: Callable[[int], bool] = port_free) -> Ports:
    """`requested` with each port this machine's run binds moved when it is bound or
    reserved by another run; the ports chosen are reserved for this process."""
    me = str(os.getpid())
    try:
        with table() as held:
            taken = {int(p) for p, v in held.items() if str(v.get("pid")) != me}
            avoid = set(requested.as_dict().values()) | taken
            moved: dict[str, int] = {}
            for key, port in requested.as_dict().items():
                if key not in LOCAL_PORT_KEYS:
                    continue
                if port in taken or not is_free(port):
                    port = moved[key] = _unused(avoid | {int(p) for p in held})
                    avoid.add(port)
                held[str(port)] = {"pid": os.getpid(), "create_time": _me(), "key": key}
    except OSError:  # no runtime folder we may use: choose as before, unreserved
        from vft.backends.local.preflight import free_ports

        return free_ports(requested)
    return replace(requested, **moved)


def hand_over(ports: Iterable[int], pid: int, created: float | None) -> None:
    """The reservations this process holds on `ports` now belong to `pid` (the run's agent)."""
    _change(ports, lambda v: {**v, "pid": pid, "create_time": created})


def release(ports: Iterable[int]) -> None:
    """Drop this process's reservations on `ports` (its run has ended)."""
    _change(ports, lambda v: None)


def _change(ports: Iterable[int], how: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
    wanted = {str(p) for p in ports}
    with contextlib.suppress(OSError), table() as held:
        for port in wanted & set(held):
            if held[port].get("pid") == os.getpid():
                new = how(held[port])
                if new is None:
                    del held[port]
                else:
                    held[port] = new


def _me() -> float | None:
    return create_time(os.getpid())


def _owner_alive(entry: dict[str, Any]) -> bool:
    pid, created = entry.get("pid"), entry.get("create_time")
    if pid == os.getpid():  # identity.same never answers for this very process
        mine = _me()
        return mine is not None and isinstance(created, int | float) and abs(created - mine) < 0.05
    return same(pid, created)


def _unused(avoid: set[int]) -> int:
    import socket

    while True:
        with socket.socket() as s:
            s.bind(("0.0.0.0", 0))
            port = int(s.getsockname()[1])
        if port not in avoid:
            return port


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, dict)}
