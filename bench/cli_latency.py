"""CLI latency: `vft --help`, `vft plan ... --json` (median of 10 runs) and planning 256 GPUs.

Targets: `vft --help` < 0.25 s, `vft plan` < 0.4 s, planning 32 nodes x 8 GPUs < 50 ms.
Run from the repository root: python bench/cli_latency.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median_wall(argv: list[str], runs: int = 10) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-400:]}")
    return statistics.median(times)


def plan_big() -> float:
    from tests.planning import UNLIMITED, make_plan

    sections = {
        "resources": {"gpus": "H100:8", "nodes": 32},
        "trainer": {"per_device_train_batch_size": 8, "num_generations": 8},
        "model": {"name": "Qwen/Qwen3-8B"},
    }
    make_plan(UNLIMITED, **sections)  # warm caches (catalog, templates)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        plan = make_plan(UNLIMITED, **sections)
        times.append(time.perf_counter() - start)
    assert len(plan.processes) == 32
    return statistics.median(times)


def main() -> None:
    # the console script next to this interpreter, not a version manager's shim in front of it
    exe = str(Path(sys.executable).parent / "vft")
    if not Path(exe).exists():
        exe = shutil.which("vft") or sys.exit("vft is not installed (pip install -e .)")
    help_s = median_wall([exe, "--help"])
    plan_s = median_wall([exe, "plan", "examples/recipes/gsm8k.toml", "--json"])
    big_s = plan_big()
    rows = [
        ("vft --help", help_s, 0.25),
        ("vft plan examples/recipes/gsm8k.toml --json", plan_s, 0.40),
        ("plan 32 nodes x 8 GPUs (in-process)", big_s, 0.05),
    ]
    for label, value, target in rows:
        verdict = "ok" if value < target else "OVER TARGET"
        print(
            f"{label:<48} median {value * 1000:7.1f} ms   target < {target * 1000:.0f} ms   {verdict}"
        )


if __name__ == "__main__":
    main()
