"""Server mode vs in-process generation on the CPU: step time, and the server's cold start.

    python bench/server_mode.py [--steps N]

Runs the smoke recipe twice with the same steps, seed and task: once generating inside
the trainer (`smoke.toml`), once through a real `vllm serve` beside it with a file weight
sync after every step (`smoke-server.toml`, needs the CPU inference stack). Prints the
median step time of each (from metrics.jsonl timestamps, the first step left out: it
includes compilation and warm-up), their ratio, the weight sync's share, and the server's
cold start: from its start to /health, and how much of it the trainer's own start-up
(imports, model, DeepSpeed) overlapped (`run.trainer_start = "overlap"`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "examples" / "recipes"
STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d) (.*)$")


def run(recipe: str, steps: int, out: Path) -> tuple[float, Path]:
    """(wall seconds, attempt folder) of one `vft run`."""
    argv = [sys.executable, "-m", "vft", "run", str(RECIPES / recipe)]
    argv += ["--set", f"trainer.max_steps={steps}", "--set", f"trainer.save_steps={steps}"]
    argv += ["--set", f'run.output_dir="{out}"']
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{recipe} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    attempt = max(out.glob("*/attempt-*"), key=lambda p: p.stat().st_mtime)
    return wall, attempt


def step_times(attempt: Path) -> list[float]:
    rows = [json.loads(line) for line in (attempt / "metrics.jsonl").read_text().splitlines()]
    times = [r["time"] for r in rows if "time" in r]
    return [b - a for a, b in itertools.pairwise(times)]


def seconds(line: str) -> float | None:
    m = STAMP.match(line)
    return int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) if m else None


def cold_start(attempt: Path) -> tuple[float | None, float | None]:
    """(server start to ready, seconds the trainer was already working before ready)."""
    events = (attempt / "logs" / "vft.log").read_text().splitlines()
    started = next((seconds(e) for e in events if "started inference" in e), None)
    trainer = next((seconds(e) for e in events if "started trainer" in e), None)
    ready = next((seconds(e) for e in events if "inference ready after" in e), None)
    if started is None or ready is None:
        return None, None
    overlap = None if trainer is None else max(0.0, ready - max(trainer, started))
    return ready - started, overlap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        in_wall, in_attempt = run("smoke.toml", args.steps, Path(tmp) / "in-process")
        sv_wall, sv_attempt = run("smoke-server.toml", args.steps, Path(tmp) / "server")
        in_steps = step_times(in_attempt)[1:]
        sv_steps = step_times(sv_attempt)[1:]
        ready, overlap = cold_start(sv_attempt)
    a, b = statistics.median(in_steps), statistics.median(sv_steps)
    print(f"steps: {args.steps} (median over the last {len(in_steps)})")
    print(f"in-process generation: {a:.2f} s/step, run {in_wall:.0f} s")
    print(f"vLLM server + file sync: {b:.2f} s/step, run {sv_wall:.0f} s")
    print(f"server / in-process step time: {b / a:.2f}x")
    if ready is not None:
        print(
            f"server cold start to /health: {ready:.0f} s; trainer start-up overlapped: "
            f"{overlap:.0f} s of it"
        )


if __name__ == "__main__":
    main()
