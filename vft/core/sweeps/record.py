"""The sweep record, `<output_dir>/<sweep>.sweep.json`: its grid, its points, their runs.

Each point is an ordinary run (`<output_dir>/<point>/attempt-N/`); the record says which
runs and attempts make up the sweep, so `vft runs --sweep NAME` and a plot of the sweep
find them again. It is rewritten whole (atomically) whenever a point changes state.
"""

from __future__ import annotations

import difflib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vft.core.errors import UserError
from vft.core.runs import write_json_atomic

SUFFIX = ".sweep.json"


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

    @property
    def keys(self) -> list[str]:
        return [str(axis["key"]) for axis in self.axes]

    def point(self, name: str) -> PointRecord:
        return next(p for p in self.points if p.name == name)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))  # TOML dates as text

    def write(self, output_dir: str | Path) -> Path:
        path = sweep_path(output_dir, self.name)
        write_json_atomic(path, self.to_dict())
        return path


def sweep_path(output_dir: str | Path, name: str) -> Path:
    return Path(output_dir) / f"{name}{SUFFIX}"


def list_sweeps(output_dir: str | Path) -> list[str]:
    root = Path(output_dir)
    if not root.is_dir():
        return []
    return sorted(p.name.removesuffix(SUFFIX) for p in root.glob(f"*{SUFFIX}") if p.is_file())


def read_sweep(name: str, output_dir: str | Path) -> SweepRecord:
    """The sweep's record; a missing or broken one is one line naming the known sweeps."""
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
        data = json.loads(path.read_bytes())
        points = [PointRecord(**p) for p in data.pop("points")]
        return SweepRecord(**data, points=points)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UserError(f"sweep {name!r}: {path} is unreadable ({reason})") from None


def sweep_run_names(name: str, output_dir: str | Path = "outputs") -> list[str]:
    """The run names of a sweep's points, in grid order (for `vft plot --sweep NAME`)."""
    return [p.name for p in read_sweep(name, output_dir).points]


def sweep_attempt_refs(name: str, output_dir: str | Path = "outputs") -> list[str]:
    """`run/attempt-N` of each launched point: the attempts this sweep made, even when a
    later run of the same name added another (`find_attempt` reads these references)."""
    return [
        f"{p.name}/attempt-{p.attempt}"
        for p in read_sweep(name, output_dir).points
        if p.attempt is not None
    ]
