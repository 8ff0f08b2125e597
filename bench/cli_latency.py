"""CLI latency against the floor: each command's wall time as a ratio to bare `python -c pass`.

    python bench/cli_latency.py [--rounds 9] [--recipe examples/recipes/gsm8k.toml]
                                [--install checkout|wheel]

Every round runs every command once, in the same order, so a busy machine slows all of
them alike (interleaved); the figures are medians over the rounds. The ratio to bare
Python is what stays comparable between machines. Also printed: the child's CPU time
(user + system; less sensitive to other load than wall time), and planning in-process
(no start-up): a fitting 8B model and a 400B model that fits nowhere, over 8 to 64 nodes
of 8 GPUs, each plan turned into its JSON (`Plan.to_json`, what `vft plan --json` prints).

Targets: `vft plan` (text and --json) and `vft backends` <= 3x bare Python; `vft --help`
<= 2.5x; planning grows about linearly with the GPUs, and the 400B refusal on 64 x 8 GPUs
takes < 50 ms. Run from the repository root.

What is installed changes the floor as much as the commands. `--install checkout` (the
default) measures this checkout's editable install, byte-compiled first as pip compiles a
wheel: its bare Python pays the editable finder (~10 ms on 2 cores), which flatters every
ratio. `--install wheel` builds vft's and vft-slurm's wheels and installs them in a new
venv: what a user runs, and the honest ratio. Floors printed beside them: "import click"
(any command of this CLI), and "import stdlib", the standard modules a typed program that
reads a TOML recipe imports before any code of its own (typing, dataclasses, json,
pathlib, re, tomllib).

The plugins installed change the figures (every command that resolves backends imports
each plugin). A development environment has the test suite's fixture plugins installed
(vft-example builds a pydantic model when imported); the "shipped" rows load only the
plugins vft ships (`VFT_PLUGINS=slurm`), which is what a user who installs vft and
vft-slurm runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"help": 2.5, "plan": 3.0, "plan --json": 3.0, "backends": 3.0, "backends --json": 3.0}


#: what a user who installs vft and its Slurm plugin loads
SHIPPED = {"VFT_PLUGINS": "slurm"}


#: the standard library a typed CLI that reads a TOML recipe imports, before any code of its own
STDLIB = "import typing, dataclasses, json, pathlib, re, tomllib"


def commands(python: str, exe: str, recipe: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    """label -> (argv, environment added)."""
    vft = {
        "help": [exe, "--help"],
        "plan": [exe, "plan", recipe],
        "plan --json": [exe, "plan", recipe, "--json"],
        "backends": [exe, "backends"],
        "backends --json": [exe, "backends", "--json"],
    }
    return {
        "python -c pass": ([python, "-c", "pass"], {}),
        "import click": ([python, "-c", "import click"], {}),
        "import stdlib": ([python, "-c", STDLIB], {}),
        **{label: (argv, {}) for label, argv in vft.items()},
        **{f"{label} (shipped)": (argv, SHIPPED) for label, argv in vft.items() if label != "help"},
    }


def compile_checkout() -> None:
    """Byte-compile vft and the shipped plugin, as pip does when it installs a wheel: with
    PYTHONDONTWRITEBYTECODE set and no compiled files, every command would compile vft's
    sources first (about 40 ms more per `vft plan` on 2 cores), which no user pays."""
    import compileall

    for folder in (ROOT / "vft", ROOT / "plugins" / "vft-slurm"):
        compileall.compile_dir(str(folder), quiet=1)


def wheel_install(folder: Path) -> tuple[str, str]:
    """vft and vft-slurm built as wheels and installed into a new venv under `folder`, as
    a user installs them (no editable finder on every start-up, compiled at install);
    returns its (python, vft)."""
    wheels = folder / "wheels"
    for source in (ROOT, ROOT / "plugins" / "vft-slurm"):
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
             "-w", str(wheels), str(source)],
            check=True, capture_output=True,
        )  # fmt: skip
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    built = sorted(str(w) for w in wheels.glob("*.whl"))
    subprocess.run([python, "-m", "pip", "install", "-q", *built], check=True, capture_output=True)
    return python, str(venv / "bin" / "vft")


def interleaved(
    cmds: dict[str, tuple[list[str], dict[str, str]]], rounds: int
) -> dict[str, tuple[float, float]]:
    """(median wall s, median child CPU s) per command, over `rounds` interleaved rounds."""
    base = {**os.environ, "COLUMNS": "80"}
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    cpus: dict[str, list[float]] = {k: [] for k in cmds}
    for argv, extra in cmds.values():  # warm the file cache and vft's caches
        subprocess.run(argv, capture_output=True, cwd=ROOT, env={**base, **extra})
    for _ in range(rounds):
        for label, (argv, extra) in cmds.items():
            env = {**base, **extra}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, cwd=ROOT, env=env)
            walls[label].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[label].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-400:]}")
    return {k: (statistics.median(walls[k]), statistics.median(cpus[k])) for k in cmds}


def plan_ms(nodes: int, model: str, runs: int = 7) -> tuple[float, str]:
    """Median ms to plan (and serialize) `model` on `nodes` x 8 H100; 'fits' or the refusal."""
    from tests.planning import UNLIMITED, make_plan
    from vft.core.errors import PlanError

    sections = {
        "resources": {"gpus": "H100:8", "nodes": nodes},
        "trainer": {"per_device_train_batch_size": 8, "num_generations": 8},
        "model": {"name": model},
    }
    times, outcome = [], ""
    for _ in range(runs + 1):  # the first warms the caches (catalog, templates)
        start = time.perf_counter()
        try:
            make_plan(UNLIMITED, **sections).to_json()
            outcome = "fits"
        except PlanError as exc:
            outcome = "refused: " + exc.message.split(":")[0]
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]) * 1000, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (>= 5)")
    parser.add_argument("--recipe", default="examples/recipes/gsm8k.toml")
    parser.add_argument(
        "--install",
        choices=("checkout", "wheel"),
        default="checkout",
        help="measure this checkout's editable install, or wheels installed in a new venv",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vft-bench-") as scratch:
        if args.install == "wheel":
            print("building and installing the wheels of vft and vft-slurm...", flush=True)
            python, exe = wheel_install(Path(scratch))
        else:
            compile_checkout()
            # the console script next to this interpreter, not a version manager's shim
            python, exe = sys.executable, str(Path(sys.executable).parent / "vft")
            if not Path(exe).exists():
                exe = shutil.which("vft") or sys.exit("vft is not installed (pip install -e .)")
        rounds = max(5, args.rounds)
        results = interleaved(commands(python, exe, args.recipe), rounds)
    report(results, rounds, f"{args.install} install, recipe {args.recipe}")
    print("\nplanning in-process (no start-up), median of 7, Plan.to_json included:")
    for model in ("Qwen/Qwen3-8B", "meta/Big-400B"):
        for nodes in (8, 16, 32, 64):
            ms, outcome = plan_ms(nodes, model)
            verdict = ""
            if model.endswith("400B") and nodes == 64:
                verdict = "   target < 50 ms  " + ("ok" if ms < 50 else "OVER")
            print(f"  {model:<14} {nodes:>2} x 8 GPUs {ms:8.2f} ms  {outcome}{verdict}")


def report(results: dict[str, tuple[float, float]], rounds: int, what: str) -> None:
    floor_wall, floor_cpu = results["python -c pass"]
    print(f"{rounds} interleaved rounds, medians; {what}")
    print(f"{'command':<28}{'wall ms':>9}{'x python':>10}{'cpu ms':>9}{'x python':>10}   target")
    for label, (wall, cpu) in results.items():
        target = TARGETS.get(label.removesuffix(" (shipped)"))
        verdict = ""
        if target is not None:
            verdict = f"<= {target:g}x  " + ("ok" if wall / floor_wall <= target else "OVER")
        name = label if label.startswith(("python", "import")) else f"vft {label}"
        print(
            f"{name:<28}{wall * 1000:9.1f}{wall / floor_wall:9.2f}x{cpu * 1000:9.1f}"
            f"{cpu / floor_cpu:9.2f}x   {verdict}"
        )


if __name__ == "__main__":
    main()
