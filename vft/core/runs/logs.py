"""Read and follow a run's log files from its attempt folder (`vft logs`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from vft.core.errors import UserError
from vft.core.runs.folders import Attempt, UnreadableRecord

POLL_S = 0.2


def log_files(attempt: Attempt, process: str | None) -> list[tuple[str, Path]]:
    """(name, path) of the logs to show: one process's, or all (vft's own first)."""
    names = _process_names(attempt)
    if process is not None:
        path = attempt.log_path(process)
        if process not in names and not path.exists():
            known = ", ".join([*names, "vft"])
            raise UserError(
                f"--process: {process!r} is not a process of this run; choose from {known}"
            )
        return [(process, path)]
    order = ["vft", *names]
    found = {p.stem: p for p in attempt.logs_dir.glob("*.log")} if attempt.logs_dir.is_dir() else {}
    wanted = [n for n in order if n in found] + sorted(n for n in found if n not in order)
    return [(n, found[n]) for n in wanted]


def _process_names(attempt: Attempt) -> list[str]:
    """The plan's process names, to order the logs; none when plan.json is missing or
    broken: the log files themselves are still worth showing."""
    try:
        return [p.name for p in attempt.plan().processes]
    except UnreadableRecord:
        return []


def read_logs(
    attempt: Attempt,
    *,
    process: str | None,
    follow: bool,
    running: Callable[[], bool],
) -> Iterator[str]:
    """Lines of the run's logs, prefixed `[name]` when several; with `follow`, until it ends."""
    prefix = process is None
    offsets: dict[str, int] = {}
    carry: dict[str, bytes] = {}
    while True:
        # a process started later (trainer after readiness) gets its log file later
        files = log_files(attempt, process)
        got = False
        for name, path in files:
            for line in _new_lines(name, path, offsets, carry):
                got = True
                yield f"[{name}] {line}" if prefix else line
        if not follow or (not got and not running()):
            for name, rest in carry.items():  # a last line without a newline
                if rest:
                    yield f"[{name}] {_text(rest)}" if prefix else _text(rest)
            return
        if not got:
            time.sleep(POLL_S)


def _new_lines(
    name: str, path: Path, offsets: dict[str, int], carry: dict[str, bytes]
) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(offsets.get(name, 0))
            data = f.read()
    except FileNotFoundError:
        return []
    offsets[name] = offsets.get(name, 0) + len(data)
    data = carry.pop(name, b"") + data
    lines = data.split(b"\n")
    carry[name] = lines.pop()
    return [_text(line) for line in lines]


def _text(line: bytes) -> str:
    return line.rsplit(b"\r", 1)[-1].decode(errors="replace")
