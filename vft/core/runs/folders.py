"""Run folders: `<output_dir>/<name>/attempt-N/` with plan.json, configs, logs and run.json.

A relaunch makes a new attempt, never overwriting an earlier one's logs. Every record is
written atomically (temp file + rename) so a reader never sees half a record:

- `run.json`: the run as a whole (status, backend, times, exit code, supervisor pid). One
  writer per machine at a time (an flock guards read-modify-write between a launcher and
  the supervisor it started); on several nodes only node 0 writes it.
- `nodes/node-<rank>.json`: one node's state (its processes, pids, exit codes), written
  only by that node's supervisor, so nodes sharing a filesystem never race on one file.
- `logs/<process>.log`: each process's output; `logs/vft.log`: the supervisor's own.
- `stop-request.json`: written by a node's supervisor when the budget is nearly spent;
  the trainer (vft/train/budget_stop.py) then saves a checkpoint and stops.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from vft.core.errors import UserError
from vft.core.plan import Plan
from vft.core.runs.paths import make_dirs, os_reason, remove_made, shown
from vft.core.runs.records import (
    NODE_FIELDS,
    RUN_FIELDS,
    UnreadableRecord,
    checked,
    load_object,
    short_reason,
)

ATTEMPT = re.compile(r"^attempt-(\d+)$")
NODE_FILE = re.compile(r"^node-(\d+)\.json$")
STOP_REQUEST = "stop-request.json"
LOCK_FILE = ".run.lock"  # exists only while a writer updates run.json
#: written into a checkpoint folder last, once every trainer process has written its part
CHECKPOINT_MARKER = "vft-checkpoint.json"


class RunStatus(StrEnum):
    """A run's state in run.json; backends may add their own (a scheduler's "queued")."""

    CREATED = "created"
    LAUNCHING = "launching"
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    # the budget (resources.max_usd / max_hours) ended it, a checkpoint first: never restart
    STOPPED_BUDGET = "stopped: budget"
    LOST = "lost"  # the supervisor died without writing its end (kill -9, reboot)
    ORPHANED = "orphaned"  # lost, and processes of the run are still alive: `vft stop` ends them
    INTERRUPTED = "interrupted"  # a signal ended it before the supervisor started (an install)
    DRY_RUN = "dry-run"


#: statuses after which nothing of the run is left running
FINISHED = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.STOPPED,
        RunStatus.STOPPED_BUDGET,
        RunStatus.LOST,
        RunStatus.INTERRUPTED,
        RunStatus.DRY_RUN,
    }
)


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Attempt:
    """One launch of a run: its folder and its record."""

    path: Path

    @property
    def number(self) -> int:
        m = ATTEMPT.match(self.path.name)
        return int(m.group(1)) if m else 0

    @property
    def run_name(self) -> str:
        return self.path.parent.name

    @property
    def record_path(self) -> Path:
        return self.path / "run.json"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def stop_request_path(self) -> Path:
        return self.path / STOP_REQUEST

    def plan(self) -> Plan:
        """The attempt's plan.json; UnreadableRecord when it is missing or broken."""
        path = self.path / "plan.json"
        try:
            return Plan.from_json(path.read_text())
        except OSError as exc:
            raise UnreadableRecord(self, f"plan.json: {os_reason(exc)}") from None
        except Exception as exc:  # whatever the plan's parser says about a broken file
            raise UnreadableRecord(self, f"plan.json is not a plan ({short_reason(exc)})") from None

    @property
    def nodes_dir(self) -> Path:
        return self.path / "nodes"

    def log_path(self, process: str) -> Path:
        return self.logs_dir / f"{safe_name(process)}.log"

    def record(self) -> dict[str, Any]:
        """run.json, checked: UnreadableRecord when missing, not JSON, or mistyped."""
        return checked(self, "run.json", load_object(self, self.record_path), RUN_FIELDS)

    def update(self, **fields: Any) -> dict[str, Any]:
        """Merge fields into run.json atomically and return the new record.

        A writer (a supervisor mid-run) must not die of a record someone broke: what is
        not a JSON object is kept aside as run.json.unreadable and the record starts over.
        """
        with self._locked():
            record = {**self._stored(), **fields}
            write_json_atomic(self.record_path, record)
        return record

    def _stored(self) -> dict[str, Any]:
        """run.json as stored, unchecked; {} (the bad bytes kept aside) if not an object."""
        try:
            return load_object(self, self.record_path)
        except UnreadableRecord:
            if self.record_path.exists():
                with contextlib.suppress(OSError):
                    shutil.copyfile(self.record_path, self.path / "run.json.unreadable")
            return {}

    def node_path(self, rank: int) -> Path:
        return self.nodes_dir / f"node-{rank}.json"

    def node(self, rank: int) -> dict[str, Any]:
        """One node's record, checked; {} before that node has written it."""
        path = self.node_path(rank)
        if not path.exists():
            return {}
        return checked(self, f"nodes/{path.name}", load_object(self, path), NODE_FIELDS)

    def write_node(self, rank: int, record: dict[str, Any]) -> None:
        write_json_atomic(self.node_path(rank), record)

    def nodes(self) -> dict[int, dict[str, Any]]:
        """Every node's record, by rank."""
        if not self.nodes_dir.is_dir():
            return {}
        found = {}
        for p in self.nodes_dir.iterdir():
            m = NODE_FILE.match(p.name)
            if m:
                found[int(m.group(1))] = self.node(int(m.group(1)))
        return dict(sorted(found.items()))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive flock on `.run.lock` around one read-modify-write of run.json,
        the file removed again before the lock is let go, so no attempt keeps one.

        Removing it is safe because a taker, once it holds the lock, checks that the file
        it locked is still the one at the path, and starts over if not: a waiter that
        opened the file before the holder removed it would otherwise own a lock on a
        deleted file while a newcomer locks a fresh one, and both would write.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        lock = self.path / LOCK_FILE
        while True:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:  # a filesystem without locks: best effort, the file stays
                held = False
                break
            if _is_file_at(fd, lock):
                held = True
                break
            os.close(fd)  # removed (or replaced) while this one waited: take the new one
        try:
            yield
        finally:
            if held:
                with contextlib.suppress(OSError):
                    lock.unlink()
            os.close(fd)

    def write_plan(self, plan: Plan) -> None:
        """plan.json and every rendered file, so the attempt folder is self-contained."""
        write_text_atomic(self.path / "plan.json", plan.to_json() + "\n")
        for name, text in plan.files.items():
            write_text_atomic(self.path / name, text)


@dataclass(frozen=True)
class RunFolder:
    """All attempts of one experiment name."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def attempts(self) -> list[Attempt]:
        found = [
            Attempt(p) for p in self.path.glob("attempt-*") if ATTEMPT.match(p.name) and p.is_dir()
        ]
        return sorted(found, key=lambda a: a.number)

    def latest(self) -> Attempt | None:
        attempts = self.attempts()
        return attempts[-1] if attempts else None

    def new_attempt(self, plan: Plan, backend: str) -> Attempt:
        """Create attempt-(N+1) atomically (mkdir fails if a concurrent launch took N+1).

        A place that cannot hold it (a file, /proc, read-only, a path too long) is one
        line, and every folder made on the way is removed again: nothing half-created.
        """
        made = make_dirs(self.path, key="run.output_dir")
        try:
            attempt = self._next_attempt()
            made.append(attempt.path)
            attempt.write_plan(plan)
            attempt.update(
                name=plan.name,
                attempt=attempt.number,
                backend=backend,
                status=RunStatus.CREATED,
                created_at=time.time(),
            )
        except OSError as exc:
            remove_made(made)
            raise UserError(
                f"run.output_dir: cannot write the run folder {shown(self.path)}: {os_reason(exc)}"
            ) from None
        except BaseException:
            remove_made(made)
            raise
        return attempt

    def _next_attempt(self) -> Attempt:
        latest = self.latest()
        n = (latest.number if latest else 0) + 1
        while True:
            try:
                (self.path / f"attempt-{n}").mkdir()
                return Attempt(self.path / f"attempt-{n}")
            except FileExistsError:
                n += 1


def _is_file_at(fd: int, path: Path) -> bool:
    """Whether the open file `fd` is the file now at `path`."""
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def safe_name(name: str) -> str:
    """A process name as a file name (plans from plugins may use any characters)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "process"


def run_folder(output_dir: str | Path, name: str) -> RunFolder:
    return RunFolder(Path(output_dir) / name)


def find_attempt(ref: str, output_dir: str | Path = "outputs") -> Attempt:
    """A run by name (latest attempt), `name/attempt-N`, or a path to either."""
    path = Path(ref)
    if not path.exists():
        path = Path(output_dir) / ref
    if ATTEMPT.match(path.name) and path.is_dir():
        return Attempt(path)
    latest = RunFolder(path).latest() if path.is_dir() else None
    if latest is None:
        names = [r.name for r in list_runs(output_dir)]
        close = difflib.get_close_matches(ref, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(names) or "none"
        raise UserError(f"run {ref!r} not found under {output_dir}/ (runs: {known}){hint}")
    return latest


def list_runs(output_dir: str | Path = "outputs") -> list[RunFolder]:
    root = Path(output_dir)
    if not root.is_dir():
        return []
    return sorted(
        (RunFolder(p) for p in root.iterdir() if p.is_dir() and any(p.glob("attempt-*"))),
        key=lambda r: r.name,
    )
