"""Stand-ins for Modal's servers, the one boundary these tests cannot reach.

`Call` is a FunctionCall whose `get` returns or raises what Modal's client returns or
raises (the real exception classes); `Volume` answers `listdir`/`read_file` with Modal's
own `FileEntry` objects and byte chunks; `CommittedVolume` is a Volume whose `commit()`
snapshots a folder standing in for the container's mounted volume, so that this side
sees only what a container committed, as on Modal. Everything vft does with their
answers runs for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from modal.exception import NotFoundError
from modal.volume import FileEntry, FileEntryType


class Call:
    def __init__(self, outcome: object, object_id: str = "fc-1") -> None:
        self.outcome = outcome
        self.object_id = object_id
        self.timeouts: list[float | None] = []

    def get(self, timeout: float | None = None) -> object:
        self.timeouts.append(timeout)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def entry(path: str, size: int = 0, kind: FileEntryType = FileEntryType.FILE) -> FileEntry:
    return FileEntry(path=path, type=kind, mtime=0, size=size)


class Volume:
    def __init__(self, files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> None:
        self.files = files
        self.dirs = dirs

    def listdir(self, path: str, *, recursive: bool = False) -> list[FileEntry]:
        path = path.strip("/")
        found = [entry(p, len(b)) for p, b in self.files.items() if p.startswith(path + "/")]
        found += [entry(d, kind=FileEntryType.DIRECTORY) for d in self.dirs if d.startswith(path)]
        if not found:
            raise NotFoundError(f"no such path {path}")
        if not recursive:
            depth = path.count("/") + 1
            found = [
                entry("/".join(e.path.split("/")[: depth + 1]), kind=FileEntryType.DIRECTORY)
                for e in found
            ]
        return found

    def read_file(self, path: str) -> Iterator[bytes]:
        if path not in self.files:
            raise FileNotFoundError(path)
        data = self.files[path]
        for i in range(0, len(data), 3):
            yield data[i : i + 3]


class CommittedVolume(Volume):
    """The Volume as this side sees it: what was in `folder` (the container's view, its
    mount point) at the last `commit()`; temporary and lock files are never committed."""

    def __init__(self, folder: Path) -> None:
        super().__init__({})
        self.folder = folder
        self.commits = 0

    def commit(self) -> None:
        self.commits += 1
        self.files = {
            str(p.relative_to(self.folder)): p.read_bytes()
            for p in sorted(self.folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")
        }
