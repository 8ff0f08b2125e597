"""A run's files in its attempt folder, listed and copied (`vft outputs`).

Both stay inside the attempt folder: a symlink there that points outside it (at
/etc/passwd, at another folder) is never followed, listed or copied. Listing skips it with
a one-line note; copying refuses before anything is written.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vft.core.errors import UserError
from vft.core.runs.folders import Attempt
from vft.core.runs.paths import make_dirs, os_reason, shown


@dataclass(frozen=True)
class Entry:
    """One file of the run: its path in the attempt folder, size, and where it really is."""

    rel: str
    size: int
    source: Path


@dataclass(frozen=True)
class Walk:
    """What a confined walk found: the files, and the links it did not follow (and why)."""

    files: list[Entry]
    refused: list[tuple[str, str]]  # (path in the run folder, where it links to)


def walk(root: Path) -> Walk:
    """Every file under `root` without leaving it: links are resolved and kept only when
    they land inside; hidden names (temp files, locks) are left out."""
    real_root = root.resolve()
    files: list[Entry] = []
    refused: list[tuple[str, str]] = []
    for folder, dirs, names in os.walk(real_root):  # followlinks=False: links are checked
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names) + [d for d in dirs if (here / d).is_symlink()]:
            if name.startswith("."):
                continue
            path = here / name
            rel = str(path.relative_to(real_root))
            entry, why = _confined(path, rel, real_root)
            if entry is not None:
                files.append(entry)
            elif why is not None:
                refused.append(why)
    return Walk(sorted(files, key=lambda e: e.rel), refused)


def _confined(path: Path, rel: str, root: Path) -> tuple[Entry | None, tuple[str, str] | None]:
    """(the file, None), (None, (rel, link target)) when refused, or (None, None) for what
    is no file."""
    if not path.is_symlink():
        return (Entry(rel, path.stat().st_size, path), None) if path.is_file() else (None, None)
    target = path.resolve()
    if not target.is_relative_to(root):
        return None, (rel, os.readlink(path))
    if target.is_file():
        return Entry(rel, target.stat().st_size, target), None
    return None, None  # a folder inside: its files are listed where they are; or dangling


def _stderr_note(line: str) -> None:
    print(f"vft: {line}", file=sys.stderr)


def list_files(
    attempt: Attempt, *, note: Callable[[str], None] = _stderr_note
) -> list[tuple[str, int]]:
    """(relative path, size) of every file of the attempt; links out are skipped, noted."""
    found = walk(attempt.path)
    for rel, target in found.refused:
        note(f"skipped {rel}: it links outside the run folder (to {target})")
    return [(e.rel, e.size) for e in found.files]


def check_dest(dest: Path) -> None:
    """Refuse, in one line and creating nothing, a DEST that cannot become a folder: a
    file, or a path whose nearest existing part is a file or cannot be written."""
    here = dest
    while not os.path.lexists(here) and here != here.parent:
        here = here.parent
    if not here.is_dir():
        what = "DEST is a file" if here == dest else f"{here} is a file"
        raise UserError(f"DEST: {dest}: {what}, not a folder")
    if not os.access(here, os.W_OK | os.X_OK):
        raise UserError(f"DEST: {dest}: {here} is not writable")


def copy_files(attempt: Attempt, dest: Path, *, prefix: str = "") -> list[Path]:
    """Copy the files under `prefix` into `dest` with a progress bar; return what was written.

    Refused in one line, before anything is written, when a link under `prefix` leads out
    of the run folder or `dest` cannot be a folder; a copy that fails half-way removes what
    it had written.
    """
    found = walk(attempt.path)
    refused = [
        (rel, target)
        for rel, target in found.refused
        if rel.startswith(prefix) or prefix.startswith(f"{rel}/")  # --prefix into the link
    ]
    if refused:
        rel, target = refused[0]
        raise UserError(
            f"outputs: {rel} links outside the run folder (to {target}); nothing copied",
            hint="remove the link, or choose other files with --prefix",
        )
    files = [e for e in found.files if e.rel.startswith(prefix)]
    if not files:
        raise UserError(f"no outputs of {attempt.run_name} start with {prefix!r}")
    made = make_dirs(dest, key="DEST")
    written: list[Path] = []
    new: list[Path] = []  # files that did not exist before: removed should the copy fail
    try:
        _copy_all(files, dest, made, written, new)
    except (OSError, UserError) as exc:
        _undo(made, new)
        if isinstance(exc, UserError):
            raise
        raise UserError(f"DEST: cannot write into {shown(dest)}: {os_reason(exc)}") from None
    except BaseException:
        _undo(made, new)
        raise
    return written


def _copy_all(
    files: list[Entry], dest: Path, made: list[Path], written: list[Path], new: list[Path]
) -> None:
    """Copy each file; the lists grow as it goes, so that a failure can be undone."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(f"copying {len(files)} files", total=sum(e.size for e in files))
        for entry in files:
            target = dest / entry.rel
            made += make_dirs(target.parent, key="DEST")
            existed = target.exists()
            shutil.copy2(entry.source, target)
            written.append(target)
            if not existed:
                new.append(target)
            progress.advance(task, entry.size)


def _undo(made: list[Path], new: list[Path]) -> None:
    """Remove what a failed copy created: the files that were new, the folders it made."""
    for path in new:
        path.unlink(missing_ok=True)
    for folder in reversed(made):
        shutil.rmtree(folder, ignore_errors=True)
