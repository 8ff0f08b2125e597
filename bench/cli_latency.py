"""CLI latency against the floor: each command's wall time as a ratio to bare `python -c pass`.

    python bench/cli_latency.py [--rounds 9] [--recipe examples/recipes/gsm8k.toml]

Every round runs every command once, in the same order, so a busy machine slows all of
them alike (interleaved); the figures are medians over the rounds. The ratio to bare
Python is what stays comparable between machines. Also printed: the child's CPU time
(user + system; less sensitive to other load than wall time), and planning in-process
(no start-up): a fitting 8B model and a 400B model that fits nowhere, over 8 to 64 nodes
of 8 GPUs, each plan turned into its JSON (`Plan.to_json`, what `vft plan --json` prints).

Targets: `vft plan` (text and --json) and `vft backends` <= 3x bare Python; `vft --help`
<= 2.5x; planning grows about linearly with the GPUs, and the 400B refusal on 64 x 8 GPUs
takes < 50 ms. Run from the repository root.

The plugins installed change the figures (every command that resolves backends imports
each plugin). A development environment has the test suite's fixture plugins installed
(vft-example builds a pydantic model when imported); the "shipped" rows load only the
plugins vft ships (`VFT_PLUGINS=slurm`), which is what a user who installs vft and
vft-slurm runs. "import click" is what any command of this CLI pays before vft's code.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"help": 2.5, "plan": 3.0, "plan --json": 3.0, "backends": 3.0, "backends --json": 3.0}


#: what a user who installs vft and its Slurm plugin loads
SHIPPED = {"VFT_PLUGINS": "slurm"}


def commands(exe: str, recipe: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    """label -> (argv, environment added)."""
    vft = {
        "help": [exe, "--help"],
        "plan": [exe, "plan", recipe],
        "plan --json": [exe, "plan", recipe, "--json"],
        "backends": [exe, "backends"],
        "backends --json": [exe, "backends", "--json"],
    }
    return {
        "python -c pass": ([sys.executable, "-c", "pass"], {}),
        "import click": ([sys.executable, "-c", "import click"], {}),
        **{label: (argv, {}) for label, argv in vft.items()},
        **{f"{label} (shipped)": (argv, SHIPPED) for label, argv in vft.items() if label != "help"},
    }


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
    args = parser.parse_args()
    # the console script next to this interpreter, not a version manager's shim in front of it
    exe = str(Path(sys.executable).parent / "vft")
    if not Path(exe).exists():
        exe = shutil.which("vft") or sys.exit("vft is not installed (pip install -e .)")
    results = interleaved(commands(exe, args.recipe), max(5, args.rounds))
    floor_wall, floor_cpu = results["python -c pass"]
    print(f"{max(5, args.rounds)} interleaved rounds, medians; recipe {args.recipe}")
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
    print("\nplanning in-process (no start-up), median of 7, Plan.to_json included:")
    for model in ("Qwen/Qwen3-8B", "meta/Big-400B"):
        for nodes in (8, 16, 32, 64):
            ms, outcome = plan_ms(nodes, model)
            verdict = ""
            if model.endswith("400B") and nodes == 64:
                verdict = "   target < 50 ms  " + ("ok" if ms < 50 else "OVER")
            print(f"  {model:<14} {nodes:>2} x 8 GPUs {ms:8.2f} ms  {outcome}{verdict}")


if __name__ == "__main__":
    main()
