"""`vft --help` latency with three plugins installed (median of 10 runs), and what plugins cost.

Builds a throwaway virtual environment on top of this one (--system-site-packages) and
pip-installs three plugin packages from tests/plugins/ into it, editable: each editable
install adds a .pth file that every interpreter start reads, the one way an installed
plugin can slow `vft --help` (which loads no plugin). Also times `vft backends --json` and
`vft plan`, which do load every plugin. Target: `vft --help` < 0.25 s.

Run from the repository root: python bench/plugins_latency.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ("vft-example", "vft-testserver", "vft-dup")
TARGET_HELP_S = 0.25
RUNS = 10
FIND_PLUGINS = (
    "from importlib import metadata; "
    "print(', '.join(sorted({ep.dist.name for ep in metadata.entry_points(group='vft')})))"
)


def median_wall(argv: list[str], env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, cwd=ROOT, env=env)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-400:]}")
    return statistics.median(times)


def make_env(work: Path) -> Path:
    """A venv seeing this environment's packages, with the three plugins installed editable."""
    venv = work / "venv"
    # no pip of its own: ensurepip's bundled setuptools would shadow this environment's
    venv_argv = [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip"]
    subprocess.run([*venv_argv, str(venv)], check=True)
    python = venv / "bin" / "python"
    for name in PLUGINS:
        src = work / "src" / name
        shutil.copytree(ROOT / "tests" / "plugins" / name, src)
        subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
             "--disable-pip-version-check",
             "--no-deps", "--no-build-isolation", "-e", str(src)],
            check=True,
        )  # fmt: skip
    return python


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vft-bench-plugins-") as tmp:
        python = make_env(Path(tmp))
        listed = subprocess.run(
            [str(python), "-c", FIND_PLUGINS], capture_output=True, text=True, check=True
        )
        print(f"vft plugin distributions in the venv: {listed.stdout.strip()}")
        pth = sorted(p.name for p in (Path(tmp) / "venv").rglob("__editable__*.pth"))
        print(f"editable .pth files read at every start: {len(pth)}")
        base = [sys.executable, "-m", "vft"]
        with_plugins = [str(python), "-m", "vft"]
        rows = [
            ("vft --help (this environment)", median_wall([*base, "--help"]), TARGET_HELP_S),
            ("vft --help (venv: + 3 editable plugins)", median_wall([*with_plugins, "--help"]), TARGET_HELP_S),
            ("vft backends --json (venv)", median_wall([*with_plugins, "backends", "--json"]), None),
            (
                "vft plan smoke.toml --json (venv)",
                median_wall([*with_plugins, "plan", "examples/recipes/smoke.toml", "--json"]),
                None,
            ),
        ]  # fmt: skip
    for label, value, target in rows:
        line = f"{label:<42} median {value * 1000:7.1f} ms"
        if target is not None:
            verdict = "ok" if value < target else "OVER TARGET"
            line += f"   target < {target * 1000:.0f} ms   {verdict}"
        print(line)


if __name__ == "__main__":
    main()
