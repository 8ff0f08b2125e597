"""Install the plugin packages under tests/plugins/ the way users do: with pip.

`install(name)` puts a package into this Python's environment (vft-example and
vft-testserver stay installed: other tests run the testserver engine). `install_target`
puts one into a folder of its own that only the subprocesses given `plugin_env(...)` see:
the duplicate and broken plugins must not leak into tests running alongside.
Either way vft finds them through their `vft` entry points, never by import path.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
_WORK = Path(tempfile.mkdtemp(prefix="vft-plugin-packages-"))
atexit.register(shutil.rmtree, _WORK, ignore_errors=True)
PLUGIN_ENV_VARS = ("VFT_PLUGINS", "VFT_DISABLE_PLUGIN_AUTOLOAD")


def _source(name: str) -> Path:
    """A clean copy of the package, so pip's in-tree build leaves nothing in the repository."""
    dest = _WORK / "src" / name
    if not dest.exists():
        ignore = shutil.ignore_patterns("*.egg-info", "__pycache__", "build")
        shutil.copytree(HERE / name, dest, ignore=ignore)
    return dest


def _pip(*args: str) -> None:
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")


@contextlib.contextmanager
def _install_lock():
    """Two pytest runs installing at once would race on site-packages."""
    with open(Path(tempfile.gettempdir()) / "vft-plugin-install.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


@functools.cache
def install(name: str) -> None:
    """pip install tests/plugins/<name> into this environment (no deps, no build isolation)."""
    with _install_lock():
        _pip(
            "install", "--no-deps", "--no-build-isolation", "--force-reinstall", str(_source(name))
        )


@functools.cache
def install_target(name: str) -> Path:
    """pip install tests/plugins/<name> into a folder of its own; returns the folder."""
    target = _WORK / "target" / name
    _pip(
        "install", "--no-deps", "--no-build-isolation", "--target", str(target), str(_source(name))
    )
    return target


def plugin_env(*targets: Path, **extra: str) -> dict[str, str]:
    """This environment without plugin switches, with `targets` on PYTHONPATH, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in PLUGIN_ENV_VARS}
    paths = [str(t) for t in targets]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    else:
        env.pop("PYTHONPATH", None)
    return {**env, **extra}


def vft(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
):
    """Run the vft CLI in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "vft", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else plugin_env(),
        cwd=cwd or ROOT,
        timeout=timeout,
    )
