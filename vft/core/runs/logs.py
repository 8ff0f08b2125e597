"""Read and follow a run's log files from its attempt folder (`vft logs`)."""

from __future__ import annotations

import re
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
    """Lines of the run's logs as one timeline, prefixed `[name]` when several; with
    `follow`, until it ends (each poll's new lines merged the same way)."""
    prefix = process is None
    timeline = Timeline(attempt)
    final = not follow or not running()  # a finished run: nothing more will come
    while True:
        # a process started later (trainer after readiness) gets its log file later
        lines = timeline.poll(log_files(attempt, process), final=final)
        for name, line in lines:
            yield f"[{name}] {line}" if prefix else line
        if final:
            return
        if not lines and not running():
            final = True  # once more: what came meanwhile, and last lines without a newline
        elif not lines:
            time.sleep(POLL_S)


#: the supervisor's own lines (vft.log) start with the local time of day
VFT_STAMP = re.compile(r"(\d\d):(\d\d):(\d\d) ")
#: a process line's own date and time near its start: `[2026-12-05 05:58:41,244]`,
#: `2026-12-05T05:58:41.2`, or a log level then `MM-DD HH:MM:SS` (vLLM: `INFO 12-05 05:58:41`)
DATE_STAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,6}))?")
LEVEL_STAMP = re.compile(
    r"(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) +(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?"
)
#: the trainer's step line; its time is the step's row in metrics.jsonl
STEP_LINE = re.compile(r"vft\.train: step (\d+)/")
STARTED = re.compile(r"started (\S+) \(pid ")
EXITED = re.compile(r"(\S+) exited with code ")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
EPSILON_S = 1e-3
#: how long before the attempt's recorded start the supervisor's first line may be
FIRST_LINE_SLACK_S = 3600.0


class Timeline:
    """Merges the logs of a run by time, from the times their lines carry.

    The supervisor stamps each of its lines with the time of day (to the second: a line
    counts as the middle of its second); a process's line is timed by its own date stamp
    (logging, vLLM), or, for the trainer's step lines, by that step's row in
    metrics.jsonl. A line with no time is placed right after the line before it in its
    file (the time we know it is at least), and every line of a process lies between the
    supervisor's `started NAME` and `NAME exited`, which the supervisor wrote before and
    after all of it. Lines of one file never change order.
    """

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt
        self.anchor = _anchor(attempt)
        self.offsets: dict[str, int] = {}
        self.carry: dict[str, bytes] = {}
        self.metrics_offset: dict[str, int] = {}
        self.metrics_carry: dict[str, bytes] = {}
        self.last: dict[str, float] = {}  # the latest time known in each file
        self.keys: dict[str, float] = {}  # the sort key of each file's last line
        self.started: dict[str, float] = {}
        self.exited: dict[str, float] = {}
        self.steps: dict[int, float] = {}
        self.seq = 0

    def poll(self, files: list[tuple[str, Path]], *, final: bool) -> list[tuple[str, str]]:
        """The new complete lines of `files`, merged by time; `final`: with each file's
        last line that has no newline (the file ended mid-line)."""
        timed: list[tuple[float, int, str, str]] = []
        for name, path in sorted(files, key=lambda f: f[0] != "vft"):  # its bounds first
            for line in _new_lines(name, path, self.offsets, self.carry):
                timed.append(self._timed(name, line))
        if final:
            timed += [self._timed(n, _text(rest)) for n, rest in self.carry.items() if rest]
            self.carry.clear()
        timed.sort(key=lambda t: (t[0], t[1]))
        return [(name, line) for _, _, name, line in timed]

    def _timed(self, name: str, line: str) -> tuple[float, int, str, str]:
        self.seq += 1
        if name == "vft":
            return self._vft_time(line), self.seq, name, line
        at = self._own_time(line)
        if at is not None:
            self.last[name] = at
        key = self.last.get(name, self.started.get(name, float("-inf")))
        if name in self.started:
            key = max(key, self.started[name] + EPSILON_S)
        if name in self.exited:
            key = min(key, self.exited[name] - EPSILON_S)
        # a file's lines keep their order: a stamp coarser than the line before it
        # (vLLM's whole seconds after a logger's milliseconds) never moves a line back
        key = max(key, self.keys.get(name, float("-inf")))
        self.keys[name] = key
        return key, self.seq, name, line

    def _vft_time(self, line: str) -> float:
        m = VFT_STAMP.match(line)
        if m is None:
            return self.last.get("vft", float("-inf"))
        hms = int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3])
        # the supervisor writes in order: a time of day before the last line's is the next
        # day (a quiet supervisor can go 12 hours and more between two lines); the first
        # line may come a little before the record's start time
        prev, slack = self.last.get("vft"), 1.0
        if prev is None:
            prev, slack = self.anchor, FIRST_LINE_SLACK_S
        at = _midnight(self.anchor) + hms + 0.5
        while at < prev - slack:
            at += 86400
        self.last["vft"] = at
        rest = line[m.end() :]
        for pattern, bounds in ((STARTED, self.started), (EXITED, self.exited)):
            event = pattern.match(rest)
            if event:
                bounds[event[1]] = at
        return at

    def _own_time(self, line: str) -> float | None:
        head = ANSI.sub("", line[:120])
        m = DATE_STAMP.search(head[:40])
        if m:
            parts = (int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]))
            return _local(*parts) + float(f"0.{m[7] or 0}")
        m = LEVEL_STAMP.match(head)
        if m:
            year = time.localtime(self.anchor).tm_year
            parts = (year, int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]))
            return _local(*parts) + float(f"0.{m[6] or 0}")
        m = STEP_LINE.search(head)
        if m:
            return self._step_time(int(m[1]))
        return None

    def _step_time(self, step: int) -> float | None:
        if step not in self.steps:
            self._read_metrics()
        return self.steps.get(step)

    def _read_metrics(self) -> None:
        """The rows of metrics.jsonl written since the last read: step -> its time."""
        from vft.core.runs.metrics import parse_rows

        path = self.attempt.path / "metrics.jsonl"  # its own offsets: never a log line
        lines = _new_lines("metrics", path, self.metrics_offset, self.metrics_carry)
        for row in parse_rows("\n".join(lines)):
            if isinstance(row.get("time"), int | float):
                self.steps.setdefault(row["step"], float(row["time"]))


def _anchor(attempt: Attempt) -> float:
    """When the attempt began: the day the supervisor's times of day belong to."""
    try:
        record = attempt.record()
    except UnreadableRecord:
        record = {}
    for key in ("started_at", "created_at"):
        value = record.get(key)
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    try:
        return attempt.logs_dir.stat().st_mtime
    except OSError:
        return time.time()


def _midnight(at: float) -> float:
    t = time.localtime(at)
    return _local(t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0)


def _local(year: int, month: int, day: int, hour: int, minute: int, second: int) -> float:
    try:
        return time.mktime((year, month, day, hour, minute, second, 0, 0, -1))
    except (OverflowError, ValueError):
        return float("-inf")


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
