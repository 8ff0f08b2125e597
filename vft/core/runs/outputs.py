"""A run's files in its attempt folder, listed and copied (`vft outputs`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from vft.core.errors import UserError
from vft.core.runs.folders import Attempt


def list_files(attempt: Attempt) -> list[tuple[str, int]]:
    """(relative path, size) of every file of the attempt, hidden temp files excepted."""
    root = attempt.path
    return [
        (str(p.relative_to(root)), p.stat().st_size)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]


def copy_files(attempt: Attempt, dest: Path, *, prefix: str = "") -> list[Path]:
    """Copy the files under `prefix` into `dest` with a progress bar; return what was written."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    files = [(rel, size) for rel, size in list_files(attempt) if rel.startswith(prefix)]
    if not files:
        raise UserError(f"no outputs of {attempt.run_name} start with {prefix!r}")
    written = []
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(f"copying {len(files)} files", total=sum(s for _, s in files))
        for rel, size in files:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(attempt.path / rel, target)
            written.append(target)
            progress.advance(task, size)
    return written
