"""Folders a run makes, and OS errors said as one line: nothing half-made is left behind."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from vft.core.errors import UserError


def make_dirs(path: Path, *, key: str) -> list[Path]:
    """Create `path` and its missing parents; return those made, outermost first.

    On failure the ones made are removed again and the reason is one UserError line
    naming `key` (what the user wrote that chose the place).
    """
    made: list[Path] = []
    try:
        for folder in reversed(_missing(path)):
            folder.mkdir()
            made.append(folder)
        if not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
    except OSError as exc:
        remove_made(made)
        raise UserError(
            f"{key}: cannot create the folder {shown(path)}: {os_reason(exc)}"
        ) from None
    return made


def _missing(path: Path) -> list[Path]:
    """`path` and its parents that do not exist yet, innermost first."""
    missing: list[Path] = []
    here = path
    while here != here.parent:
        try:
            os.lstat(here)
            break
        except (FileNotFoundError, NotADirectoryError):
            missing.append(here)
            here = here.parent
    return missing


def remove_made(made: list[Path]) -> None:
    """Undo `make_dirs` (and what was written inside): the first one holds the rest."""
    if made:
        shutil.rmtree(made[0], ignore_errors=True)


def os_reason(exc: OSError) -> str:
    """An OSError as the words a user needs, naming the path that failed."""
    where = f" ({shown(exc.filename)})" if exc.filename else ""
    if exc.errno == errno.ENAMETOOLONG:
        return f"the path is too long for this filesystem{where}"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"a file is in the way, not a folder{where}"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"not writable{where}"
    if exc.errno == errno.ENOENT:
        return f"no such file or folder, and none can be made there{where}"
    return f"{exc.strerror or type(exc).__name__}{where}"


def shown(path: str | Path, limit: int = 120) -> str:
    """A path as an error line shows it: a very long one keeps its ends."""
    text = str(path)
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]}...{text[-(limit // 2) :]} ({len(text)} characters)"
