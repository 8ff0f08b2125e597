"""The sweep record, `<output_dir>/<sweep>.sweep.json`: its grid, its points, their runs.

Each point is an ordinary run (`<output_dir>/<point>/attempt-N/`); the record says which
runs and attempts make up the sweep, so `vft runs --sweep NAME` and a plot of the sweep
find them again. It is rewritten whole (atomically) whenever a point changes state.

Running a sweep again under the same name is a new launch of it, as `vft run` of an
existing name is a new attempt: the points' runs get their next attempt, and the record
keeps every launch. Its top level is the latest launch (the shape an older vft wrote, so
such a file reads as launch 1); the earlier ones are under "earlier". `NAME` means the
latest launch, `NAME/launch-N` one of them. A file lock guards each read-modify-write,
so two launches of one sweep at once never drop each other's record.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vft.core.errors import UserError
from vft.core.runs import write_json_atomic

SUFFIX = ".sweep.json"
#: a reference to one launch of a sweep: `lr-scan/launch-1`
LAUNCH_REF = re.compile(r"^(?P<name>[^/]+)/launch-(?P<number>\d+)$")


@dataclass
class PointRecord:
    name: str  # the point's run name
    values: dict[str, Any]
    attempt: int | None = None  # set once the point is launched
    status: str = "pending"
    exit_code: int | None = None
    note: str | None = None  # why it did not run, or how it ended


@dataclass
class SweepRecord:
    name: str
    recipe: str
    backend: str
    axes: list[dict[str, Any]]  # [{"key": ..., "values": [...]}], in grid order
    overrides: list[str]
    max_parallel: int
    points: list[PointRecord]
    status: str = "running"
    created_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    launch: int = 1  # which launch of the sweep under this name (a record without it: 1)

    @property
    def keys(self) -> list[str]:
        return [str(axis["key"]) for axis in self.axes]

    @property
    def ref(self) -> str:
        return f"{self.name}/launch-{self.launch}"

    def point(self, name: str) -> PointRecord:
        return next(p for p in self.points if p.name == name)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))  # TOML dates as text

    def write(self, output_dir: str | Path) -> Path:
        """This launch's record into the file, every other launch in it kept as stored.

        A file someone broke mid-sweep must not end the sweep, nor be lost: its bytes are
        kept aside as `<sweep>.sweep.json.unreadable` and the record starts over."""
        path = sweep_path(output_dir, self.name)
        with _locked(path):
            try:
                launches = _load(path) if path.exists() else []
            except (OSError, ValueError, TypeError, KeyError, AttributeError):
                with contextlib.suppress(OSError):
                    shutil.copyfile(path, path.with_name(path.name + ".unreadable"))
                launches = []
            _store(path, [*(r for r in launches if r.launch != self.launch), self])
        return path


def sweep_path(output_dir: str | Path, name: str) -> Path:
    return Path(output_dir) / f"{name}{SUFFIX}"


def list_sweeps(output_dir: str | Path) -> list[str]:
    root = Path(output_dir)
    if not root.is_dir():
        return []
    return sorted(p.name.removesuffix(SUFFIX) for p in root.glob(f"*{SUFFIX}") if p.is_file())


def split_ref(ref: str) -> tuple[str, int | None]:
    """(sweep name, launch number) of `NAME` (None: the latest) or `NAME/launch-N`."""
    m = LAUNCH_REF.match(ref)
    return (m.group("name"), int(m.group("number"))) if m else (ref, None)


def read_launches(name: str, output_dir: str | Path) -> list[SweepRecord]:
    """Every launch of the sweep, the first first; a missing or broken record is one line
    naming the known sweeps."""
    path = sweep_path(output_dir, name)
    if not path.is_file():
        known = list_sweeps(output_dir)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(
            f"sweep {name!r} not found under {output_dir}/ (sweeps: {', '.join(known) or 'none'})"
            f"{hint}"
        )
    try:
        return _load(path)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise UserError(f"sweep {name!r}: {path} is unreadable ({_reason(exc)})") from None


def read_sweep(ref: str, output_dir: str | Path) -> SweepRecord:
    """The launch `ref` names: `NAME` (its latest launch) or `NAME/launch-N`."""
    name, number = split_ref(ref)
    return pick_launch(read_launches(name, output_dir), number)


def pick_launch(launches: list[SweepRecord], number: int | None) -> SweepRecord:
    """Launch `number` of a sweep's launches (None: the latest); one line naming the
    launches there are when it has no such launch."""
    found = [r for r in launches if number is None or r.launch == number]
    if not found:
        known = ", ".join(r.ref for r in launches)
        raise UserError(f"sweep {launches[-1].name!r} has no launch-{number} (launches: {known})")
    return found[-1]


def new_launch(record: SweepRecord, output_dir: str | Path) -> list[SweepRecord]:
    """Number `record` as the sweep's next launch and write it beside the earlier ones
    (returned, the first first); an unreadable record refuses before anything starts."""
    path = sweep_path(output_dir, record.name)
    try:
        return _new_launch(record, path)
    except OSError as exc:
        raise UserError(
            f"run.output_dir: cannot write the sweep record {path}: {exc.strerror or exc}"
        ) from None


def _new_launch(record: SweepRecord, path: Path) -> list[SweepRecord]:
    with _locked(path):
        earlier: list[SweepRecord] = []
        if path.exists():
            try:
                earlier = _load(path)
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
                raise UserError(
                    f"sweep {record.name!r}: {path} is unreadable ({_reason(exc)}); "
                    "move it aside or give the sweep another --name"
                ) from None
        record.launch = max((r.launch for r in earlier), default=0) + 1
        _store(path, [*earlier, record])
    return earlier


def sweep_run_names(ref: str, output_dir: str | Path = "outputs") -> list[str]:
    """The run names of a sweep's points, in grid order (for `vft plot --sweep NAME`)."""
    return [p.name for p in read_sweep(ref, output_dir).points]


def sweep_attempt_refs(ref: str, output_dir: str | Path = "outputs") -> list[str]:
    """`run/attempt-N` of each launched point: the attempts this launch of the sweep made,
    even when a later run of the same name added another (`find_attempt` reads these)."""
    return [
        f"{p.name}/attempt-{p.attempt}"
        for p in read_sweep(ref, output_dir).points
        if p.attempt is not None
    ]


def _from_dict(data: dict[str, Any]) -> SweepRecord:
    data = dict(data)
    points = [PointRecord(**p) for p in data.pop("points")]
    record = SweepRecord(**data, points=points)
    if not isinstance(record.launch, int) or record.launch < 1:
        raise ValueError(f"launch {record.launch!r} is not a launch number")
    return record


def _load(path: Path) -> list[SweepRecord]:
    """The file's launches, the first first (a file without "earlier" holds one)."""
    data = json.loads(path.read_bytes())
    earlier = data.pop("earlier", [])
    return sorted([*map(_from_dict, earlier), _from_dict(data)], key=lambda r: r.launch)


def _store(path: Path, launches: list[SweepRecord]) -> None:
    launches = sorted(launches, key=lambda r: r.launch)
    data = launches[-1].to_dict()
    if len(launches) > 1:
        data["earlier"] = [r.to_dict() for r in launches[:-1]]
    write_json_atomic(path, data)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An flock beside the record (`.<sweep>.sweep.lock`) for one read-modify-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(
        path.with_name(f".{path.name.removesuffix('.json')}.lock"), os.O_CREAT | os.O_RDWR, 0o644
    )
    try:
        with contextlib.suppress(OSError):  # a filesystem without locks: best effort
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
