"""`environment.install`: local packages pip-installed (editable) before the run starts."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from vft.core.errors import UserError


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


def install(paths: tuple[str, ...] | list[str], log_path: Path) -> list[str]:
    """`python -m pip install -e PATH` for each path not already installed from there.

    pip's output goes to `log_path`; a failure is a one-line UserError pointing at it.
    Returns a note per package.
    """
    notes = []
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for item in paths:
        path = Path(item)
        name = installed_from(path)
        if name:
            notes.append(f"environment.install: {item} already installed ({name})")
            continue
        argv = [sys.executable, "-m", "pip", "install", "-e", str(path.resolve())]
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            code = subprocess.run(
                argv, stdout=log, stderr=subprocess.STDOUT, check=False
            ).returncode
        if code:
            raise UserError(
                f"environment.install: `pip install -e {item}` failed with exit code {code}; "
                f"see {log_path}"
            )
        notes.append(f"environment.install: installed {item}")
    return notes
