"""A Modal run's files on its Volume: list them, download them with a progress bar."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from vft.backends.modal.remote import current_run_dir, modal_errors, modal_record
from vft.core.errors import UserError
from vft.core.runs.folders import Attempt


def _volume(record: dict[str, Any]) -> Any:
    import modal

    return modal.Volume.from_name(record["volume"])


def list_files(volume: Any, run_dir: str) -> list[tuple[str, int]]:
    """(path relative to the run folder, size) of every file under `run_dir` on the volume."""
    from modal.exception import NotFoundError
    from modal.volume import FileEntryType  # type: ignore[attr-defined]

    try:
        entries = volume.listdir(run_dir, recursive=True)
    except (NotFoundError, FileNotFoundError):
        return []
    root = PurePosixPath(run_dir)
    found = []
    for entry in entries:
        if entry.type != FileEntryType.FILE:
            continue
        path = PurePosixPath(entry.path.lstrip("/"))
        rel = path.relative_to(root) if path.is_relative_to(root) else path
        found.append((str(rel), int(entry.size)))
    return sorted(found)


def list_outputs(attempt: Attempt) -> list[tuple[str, int]]:
    """The files of the launch's current attempt on the volume (after a restart by Modal's
    retries, the newest one: its checkpoints are the run's latest)."""
    record = modal_record(attempt)
    with modal_errors():
        volume = _volume(record)
        return list_files(volume, current_run_dir(volume, record))


def get_outputs(attempt: Attempt, dest: Path, *, prefix: str = "") -> list[Path]:
    """Download the current attempt's files under `prefix` into `dest`, keeping their
    relative paths."""
    record = modal_record(attempt)
    with modal_errors():
        volume = _volume(record)
        run_dir = current_run_dir(volume, record)
        files = [(p, s) for p, s in list_files(volume, run_dir) if p.startswith(prefix)]
        if not files:
            where = f"{record['volume']}:/{run_dir}/{prefix}"
            raise UserError(f"no files under {where} (outputs are committed at checkpoints)")
        return download(volume, run_dir, files, dest)


def download(volume: Any, run_dir: str, files: list[tuple[str, int]], dest: Path) -> list[Path]:
    """Each file through a temporary name and a rename: an interrupted download leaves no
    half file under the real name."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    written: list[Path] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(f"{len(files)} files", total=sum(s for _, s in files))
        for rel, _ in files:
            target = dest / rel
            if not target.resolve().is_relative_to(dest.resolve()):
                raise UserError(f"refusing to write {rel!r} outside {dest}")
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.part")
            with open(partial, "wb") as f:
                for chunk in volume.read_file(f"{run_dir}/{rel}"):
                    f.write(chunk)
                    progress.advance(task, len(chunk))
            os.replace(partial, target)
            written.append(target)
    return written
