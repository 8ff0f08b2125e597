"""A v1 harness's program runs on the trainer's own Python, never through a uv download.

verifiers.v1 runs a harness's program (a PEP 723 script: the `null` chat loop, `bash`,
...) in its subprocess runtime through `uv sync --script`, which first installs uv
(`pip install --user`, else curl from astral.sh) and then resolves the script's
dependencies from the network into an environment of its own. On a training node that
is a download per node, files written into the user's home, and a failure on a machine
offline. The programs of the built-in chat harnesses need only what verifiers itself
depends on (openai, mcp, httpx, tenacity), so vft runs a program on this interpreter
when every dependency it declares is installed here, and refuses it in one line, naming
what is missing, otherwise. The program is the same file; only its interpreter differs.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

_BLOCK = re.compile(r"(?m)^# /// script\s*$\n(?P<body>(^#(| .*)$\n)+)^# ///\s*$")
_PATCHED = "_vft_runs_programs_here"


def declared(source: str) -> dict[str, Any]:
    """The PEP 723 `script` metadata of a program ({} when it declares none)."""
    match = _BLOCK.search(source)
    if match is None:
        return {}
    body = "".join(
        line[2:] if line.startswith("# ") else line[1:]
        for line in match.group("body").splitlines(keepends=True)
    )
    try:
        return tomllib.loads(body)
    except tomllib.TOMLDecodeError:
        return {}


def unmet(source: str) -> list[str]:
    """The requirements of the program that this interpreter does not satisfy."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import SpecifierSet

    meta = declared(source)
    missing = []
    python = meta.get("requires-python")
    here = ".".join(map(str, sys.version_info[:3]))
    if python and not SpecifierSet(str(python)).contains(here, prereleases=True):
        missing.append(f"python{python} (this is {here})")
    for item in meta.get("dependencies") or []:
        try:
            req = Requirement(str(item))
        except InvalidRequirement:
            missing.append(str(item))
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(str(req))
            continue
        if not req.specifier.contains(version, prereleases=True):
            missing.append(f"{req} (installed: {version})")
    return missing


def program_file(folder: str | Path, data: bytes) -> Path:
    """The program written once under `folder`, named by its content."""
    path = Path(folder) / f"{hashlib.sha256(data).hexdigest()}.py"
    if not (path.is_file() and path.read_bytes() == data):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path


async def _prepare_here(
    self: Any, script: str | bytes, env: dict[str, str] | None = None, *, activate: bool = True
) -> list[str]:
    """`SubprocessRuntime.prepare_uv_script`, on this interpreter (see the module doc)."""
    data = script.encode() if isinstance(script, str) else script
    missing = unmet(data.decode("utf-8", "replace"))
    if missing:
        raise RuntimeError(
            "the harness program needs what is not installed here: "
            f"{', '.join(missing)} (install it into the trainer's environment: "
            f"pip install {' '.join(repr(m.split(' (')[0]) for m in missing)})"
        )
    return [sys.executable, str(program_file(self.scripts_dir, data))]


def run_programs_here() -> None:
    """From now on, in this process, local v1 runtimes run programs on this interpreter."""
    from verifiers.v1.runtimes import SubprocessRuntime

    if getattr(SubprocessRuntime, _PATCHED, False):
        return
    SubprocessRuntime.prepare_uv_script = _prepare_here
    setattr(SubprocessRuntime, _PATCHED, True)
