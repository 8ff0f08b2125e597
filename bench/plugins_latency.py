"""`vft --help` latency with three plugins installed, and what plugins cost, interleaved.

Builds a throwaway virtual environment on top of this one (--system-site-packages) and
pip-installs three plugin packages from tests/plugins/ into it, editable: each editable
install adds a .pth file that every interpreter start reads, the one way an installed
plugin can slow `vft --help` (which loads no plugin). Also times `vft backends --json` and
`vft plan`, which do load every plugin. Every round runs every command once, in the same
order, so other load on the machine slows all of them alike; the figures are medians over
the rounds, also as ratios to bare `python -c pass`. Target: `vft --help` < 0.25 s.

Run from the repository root: python bench/plugins_latency.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import shutil
import site
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


def interleaved(cmds: dict[str, list[str]], rounds: int) -> dict[str, float]:
    """Median wall seconds per command over `rounds` rounds of every command in turn."""
    times: dict[str, list[float]] = {label: [] for label in cmds}
    for argv in cmds.values():  # warm the file cache
        subprocess.run(argv, capture_output=True, cwd=ROOT)
    for _ in range(rounds):
        for label, argv in cmds.items():
            start = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, cwd=ROOT)
            times[label].append(time.perf_counter() - start)
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-400:]}")
    return {label: statistics.median(t) for label, t in times.items()}


def make_env(work: Path) -> Path:
    """A venv seeing this environment's packages, with the three plugins installed editable."""
    venv = work / "venv"
    # no pip of its own: ensurepip's bundled setuptools would shadow this environment's.
    # `--system-site-packages` would see the base interpreter's packages, not this
    # environment's (vft, setuptools): a .pth file adds this environment's site-packages
    venv_argv = [sys.executable, "-m", "venv", "--without-pip"]
    subprocess.run([*venv_argv, str(venv)], check=True)
    python = venv / "bin" / "python"
    inner = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # addsitedir, not a bare path: this environment's own .pth files (vft's editable
    # finder among them) must run in the venv too
    lines = [f"import site; site.addsitedir({d!r})" for d in site.getsitepackages()]
    Path(inner, "vft-bench-parent.pth").write_text("\n".join(lines) + "\n")
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=RUNS, help="interleaved rounds (>= 5)")
    rounds = max(5, parser.parse_args().rounds)
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
        cmds = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "vft --help (this environment)": [*base, "--help"],
            "vft --help (venv: + 3 editable plugins)": [*with_plugins, "--help"],
            "vft backends --json (venv)": [*with_plugins, "backends", "--json"],
            "vft plan smoke.toml --json (venv)": [
                *with_plugins, "plan", "examples/recipes/smoke.toml", "--json",
            ],
        }  # fmt: skip
        medians = interleaved(cmds, rounds)
    floor = medians["python -c pass"]
    print(f"{rounds} interleaved rounds, medians")
    for label, value in medians.items():
        line = f"{label:<42} median {value * 1000:7.1f} ms  {value / floor:5.2f}x python"
        if label.startswith("vft --help"):
            verdict = "ok" if value < TARGET_HELP_S else "OVER TARGET"
            line += f"   target < {TARGET_HELP_S * 1000:.0f} ms   {verdict}"
        print(line)


if __name__ == "__main__":
    main()
