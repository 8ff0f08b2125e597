"""What is installed, read once: the `vft` entry points and each distribution's facts.

`import importlib.metadata` and one walk over every installed distribution cost tens of
milliseconds, more than the rest of `vft plan`. The walk's result is kept in the user's
cache (`$XDG_CACHE_HOME/vft/installed/`, else `~/.cache/vft/installed/`), keyed by the
interpreter, `sys.path` and the modification time of each `sys.path` folder: installing,
upgrading or removing a distribution adds or removes a `*.dist-info` folder in one of
them, which changes that folder's time, and the next command walks again. A folder
changed in the last seconds is not trusted (two changes within one clock tick leave one
time) and its walk is not kept. A cache that cannot be read or written is walked past,
never believed: it only saves time. `VFT_NO_CACHE=1` neither reads nor writes it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.metadata import Distribution as MetadataDistribution

#: the entry-point groups kept: what vft discovers through entry points
GROUPS = ("vft",)
FORMAT = 1  # bump when what a cache file holds changes
#: a folder changed this recently may change again within the same clock tick
UNSETTLED_NS = 2_000_000_000
#: cache files not rewritten for this long, or beyond the newest KEEP, are removed (each
#: `python -m vft` from another folder has a sys.path, and so a file, of its own)
STALE_S = 30 * 86400
KEEP = 32
_HEADER = b"vft-installed"
# importlib.metadata.EntryPoint's own grammar: `module[:attr[.attr]] [extras]`
_ENTRY_VALUE = re.compile(
    r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"
)


@dataclass(frozen=True)
class EntryPoint:
    """One entry point and the distribution that declares it."""

    name: str
    value: str
    group: str
    dist: str  # the distribution's name as its metadata spells it ('' if it has none)
    version: str

    def load(self) -> Any:
        """Import `module` and return `module.attr` (what `importlib.metadata` does)."""
        match = _ENTRY_VALUE.match(self.value)
        if match is None:
            raise ValueError(f"entry point {self.name} = {self.value!r} is not 'module:attr'")
        obj: Any = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            obj = getattr(obj, attr)
        return obj


@dataclass(frozen=True)
class Distribution:
    """What vft needs to know of one installed distribution, without importing it."""

    name: str  # as its metadata spells it; '' for a folder without a Name
    version: str
    requires: tuple[str, ...]  # the names it depends on, lowercase, `_` as `-`
    modules: tuple[str, ...]  # top-level modules, from top_level.txt or else RECORD
    editable: bool  # RECORD lists a `.pth` file: an editable install
    pth_lines: tuple[str, ...]  # the path lines of its `.pth` files (folders put on sys.path)


@dataclass(frozen=True)
class Installed:
    """Every distribution on sys.path, in sys.path order (shadowed ones included), and the
    entry points of `GROUPS` of the first distribution of each name (as Python loads them)."""

    distributions: tuple[Distribution, ...]
    entry_points: tuple[EntryPoint, ...]

    def select(self, group: str) -> list[EntryPoint]:
        if group not in GROUPS:
            raise KeyError(f"entry-point group {group!r} is not indexed (indexed: {GROUPS})")
        return [ep for ep in self.entry_points if ep.group == group]

    def version(self, name: str) -> str | None:
        """The version of the distribution `name` that Python would find, or None."""
        wanted = canonical(name)
        return next((d.version for d in self.distributions if canonical(d.name) == wanted), None)


def canonical(name: str) -> str:
    """PEP 503 form: `vft_example` and `VFT.Example` are the distribution `vft-example`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """`Verifiers_X[all]>=0.3; python_version>'3'` -> `verifiers-x`."""
    name = requirement.split(";")[0].strip()
    for sep in "<>=!~[ (":
        name = name.split(sep)[0]
    return name.strip().lower().replace("_", "-")


def cache_dir() -> Path | None:
    """Where the index is kept: `$XDG_CACHE_HOME/vft/installed`, else `~/.cache/...`;
    None without an absolute folder for it (a relative one would follow the cwd)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or "")
    if not root.is_absolute():  # the XDG rule: a relative value is ignored
        try:
            root = Path.home() / ".cache"
        except (RuntimeError, KeyError):  # no HOME and no password entry to find one
            return None
    return root / "vft" / "installed" if root.is_absolute() else None


_MEMO: tuple[list[Any], Installed] | None = None


def installed() -> Installed:
    """The index: from this process's memory, the cache, or a walk (then kept)."""
    global _MEMO
    key, settled = _key()
    if _MEMO is not None and _MEMO[0] == key:
        return _MEMO[1]
    path = _cache_file(key)
    found = _read(path, key) if path is not None else None
    if found is None:
        found = _walk()
        # a folder that changed during the walk, or may change again unseen: not kept
        settled = settled and _key() == (key, True)
        if path is not None and settled:
            _write(path, key, found)
    if settled:
        _MEMO = (key, found)
    return found


def forget() -> None:
    """Drop this process's copy (the cache file stays; it is checked on every read)."""
    global _MEMO
    _MEMO = None


def _cache_file(key: list[Any]) -> Path | None:
    """This interpreter's and sys.path's cache file; None when off or there is no home."""
    if os.environ.get("VFT_NO_CACHE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return None
    folder = cache_dir()
    name = f"{zlib.crc32(json.dumps(key[:2]).encode()):08x}.json"
    return folder / name if folder is not None else None


def _key() -> tuple[list[Any], bool]:
    """[format, interpreter, sys.path, folder times] and whether every folder has settled."""
    paths = [os.path.abspath(entry or ".") for entry in sys.path]
    times: list[int | None] = []
    for path in paths:
        try:
            times.append(os.stat(path).st_mtime_ns)
        except OSError:
            times.append(None)
    recent = time.time_ns() - UNSETTLED_NS
    settled = all(t is None or t < recent for t in times)
    interpreter = [FORMAT, sys.executable, sys.version, sys.prefix]
    return [interpreter, paths, times], settled


def _read(path: Path, key: list[Any]) -> Installed | None:
    """The cached index if the file is whole and its key is this one, else None."""
    try:
        raw = path.read_bytes()
        header, body = raw.split(b"\n", 1)
        magic, checksum = header.split(b" ")
        if magic != _HEADER or int(checksum, 16) != zlib.crc32(body):
            return None
        data = json.loads(body)
        if data["key"] != key:
            return None
        return Installed(
            tuple(
                Distribution(
                    str(d[0]), str(d[1]), tuple(d[2]), tuple(d[3]), bool(d[4]), tuple(d[5])
                )
                for d in data["distributions"]
            ),
            tuple(EntryPoint(*map(str, e)) for e in data["entry_points"]),
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _write(path: Path, key: list[Any], index: Installed) -> None:
    """Write the index whole or not at all, then prune the folder."""
    body = json.dumps(
        {
            "key": key,
            "distributions": [
                [d.name, d.version, d.requires, d.modules, d.editable, d.pth_lines]
                for d in index.distributions
            ],
            "entry_points": [
                [e.name, e.value, e.group, e.dist, e.version] for e in index.entry_points
            ],
        },
        separators=(",", ":"),
    ).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(_HEADER + b" %08x\n" % zlib.crc32(body) + body)
        os.replace(tmp, path)
        _prune(path.parent)
    except OSError:  # a read-only or missing cache folder: the next command walks again
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _prune(folder: Path) -> None:
    """Remove the cache files unused for a month, and all but the newest KEEP."""
    by_age = sorted(
        ((p.stat().st_mtime, p) for p in folder.iterdir() if p.suffix in (".json", ".tmp")),
        reverse=True,
    )
    old = time.time() - STALE_S
    for rank, (mtime, other) in enumerate(by_age):
        if rank >= KEEP or mtime < old:
            other.unlink(missing_ok=True)


def _walk() -> Installed:
    """Read every distribution's metadata (the slow part this module exists to avoid)."""
    from importlib import metadata

    dists: list[Distribution] = []
    entry_points: list[EntryPoint] = []
    seen: set[str] = set()
    for dist in metadata.distributions():
        info = dist.metadata
        name = (info["Name"] or "").strip()
        version = str(info["Version"] or "")
        requires = info.get_all("Requires-Dist") or dist.requires or []
        names = tuple(dict.fromkeys(requirement_name(r) for r in requires))
        modules, editable, pth_lines = _modules(dist)
        dists.append(Distribution(name, version, names, modules, editable, pth_lines))
        unique = canonical(name) if name else str(id(dist))
        if unique in seen:  # shadowed by one of the same name earlier on sys.path
            continue
        seen.add(unique)
        for ep in dist.entry_points:
            if ep.group in GROUPS:
                entry_points.append(EntryPoint(ep.name, ep.value, ep.group, name, version))
    return Installed(tuple(dists), tuple(entry_points))


def _modules(dist: MetadataDistribution) -> tuple[tuple[str, ...], bool, tuple[str, ...]]:
    """(top-level modules, editable, `.pth` path lines) from top_level.txt and RECORD."""
    text = dist.read_text("top_level.txt")
    modules = {m for m in text.split() if m and not m.startswith("_")} if text else set()
    record = dist.read_text("RECORD") or dist.read_text("installed-files.txt") or ""
    pths = []
    for rel in (line.split(",", 1)[0] for line in record.splitlines() if line):
        top = rel.replace("\\", "/").split("/", 1)[0]
        if top.endswith(".pth"):
            pths.append(rel)
            continue
        if (
            text
            or top.endswith((".dist-info", ".egg-info", ".data"))
            or top.startswith(("_", ".."))
        ):
            continue
        if "/" not in rel and not top.endswith(".py"):
            continue
        modules.add(top.removesuffix(".py"))
    lines: list[str] = []
    for rel in pths:
        try:
            content = Path(str(dist.locate_file(rel))).read_text(errors="replace")
        except OSError:
            continue
        lines += [
            line.strip()
            for line in content.splitlines()
            if line.strip() and not line.strip().startswith(("#", "import "))
        ]
    return tuple(sorted(modules)), bool(pths), tuple(lines)
