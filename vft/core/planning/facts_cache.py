"""The cache of what environments need (`EnvironmentFacts`), shared by `vft plan` and
`vft envs`: describing an environment loads it in a subprocess (seconds), a cached answer
is read in microseconds.

One JSON record per key (`cache_file`): the facts (`EnvironmentFacts.to_dict`), or
`{"absent": true}` (not loadable here, as installed now), or `{"note": ..., "at": ...}`
(could not be loaded offline: believed for `NOTE_TTL_S`, then tried again). A record that
is none of these (damaged, foreign) is a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vft import __version__
from vft.core.planning.environment_facts import EnvironmentFacts

#: how long "could not be loaded here" (offline) is believed before the environment is tried again
NOTE_TTL_S = 3600.0


@dataclass(frozen=True)
class Cached:
    """A hit: the facts, or None with the note (None too: not loadable here)."""

    facts: EnvironmentFacts | None
    note: str | None = None


def cache_file(env_id: str, args: dict[str, Any], install: tuple[str, ...]) -> Path | None:
    """The record's file for this environment, arguments and install folders; None where
    there is no cache folder (no home)."""
    from vft.core.installed import cache_dir

    folder = cache_dir()
    if folder is None:
        return None
    return folder.parent / "environments" / f"{facts_key(env_id, args, install)}.json"


def facts_key(env_id: str, args: dict[str, Any], install: tuple[str, ...]) -> str:
    """A digest of everything the facts depend on: the environment's files and verifiers'
    version; and where the environment or verifiers cannot be found here (the answer is
    then "not loadable here"), sys.path and every distribution installed, so that
    installing either, or putting either on PYTHONPATH, changes the key. A laptop that
    plans for a remote image so never loads the environment on every `vft plan`."""
    from vft.core.installed import installed
    from vft.core.planning.environments import environment_files

    files = environment_files(env_id, install)
    index = installed()
    verifiers = index.version("verifiers")
    stamp: list[Any] = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    if not files or verifiers is None:
        stamp += [sys.path, [(d.name, d.version) for d in index.distributions]]
    blob = json.dumps([env_id, args, install, stamp, verifiers, __version__], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def read(path: Path | None) -> Cached | None:
    """The record in `path`, or None: no file, damaged, or a note past its time."""
    if path is None:
        return None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            return None
        if data.get("absent") is True:
            return Cached(None)
        if "note" in data:
            fresh = time.time() - float(data.get("at", 0)) < NOTE_TTL_S
            return Cached(None, str(data["note"])) if fresh else None
        if data.get("id"):
            return Cached(EnvironmentFacts.from_dict(data))
    return None


def keep(path: Path | None, facts: EnvironmentFacts | None, note: str | None = None) -> None:
    """Write the record for these facts (None: not loadable here) or this note, atomically;
    a folder that cannot be written is no error (the next command describes again)."""
    if path is None:
        return
    if note is not None:
        record: dict[str, Any] = {"note": note, "at": time.time()}
    else:
        record = facts.to_dict() if facts is not None else {"absent": True}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, default=str))
        os.replace(tmp, path)
