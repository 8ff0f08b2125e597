"""Wall time and peak memory of the CPU smoke run, and what `vft run` adds over the bare
`accelerate launch` command of the same plan (target: under 2 s).

    python bench/smoke.py [--repeat N]

Each repeat runs both ways, alternating (so a busy neighbour slows both alike), in fresh
temporary output folders; the first, untimed run warms the caches. Every figure is the
median of the N runs with its spread (min-max); the overhead is the median of the N
paired differences. Peak memory is the largest summed RSS of the
whole process tree, sampled every 0.1 s. Since the A/B difference is within the
training's own run-to-run noise, vft's own time is also measured directly: the wall time
of `vft run` minus the lifetime of its `accelerate launch` process.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "examples" / "recipes" / "smoke.toml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(wall s, peak tree RSS MiB, seconds the `accelerate launch` process lived) of a
    command; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    span = [0.0, 0.0]  # accelerate's start time, last time seen alive
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
                for p in tree:
                    if "accelerate" in " ".join(p.cmdline()[:3]):
                        span[0] = span[0] or p.create_time()
                        span[1] = time.time()
            except psutil.Error:
                pass
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    stop.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{argv[:4]} failed ({proc.returncode}):\n{err[-2000:]}")
    return wall, peak / 2**20, span[1] - span[0]


def via_vft(out: Path) -> tuple[float, float, float]:
    return timed(
        [
            sys.executable,
            "-m",
            "vft",
            "run",
            str(SMOKE),
            "--set",
            f"run.output_dir={json.dumps(str(out))}",
        ]
    )


def by_hand(out: Path) -> tuple[float, float, float]:
    """The plan's trainer command, run directly (the plan is built before the clock starts)."""
    from vft.core.plan import NodeContext
    from vft.core.runs.folders import run_folder
    from vft.launch import prepare

    overrides = (f"run.output_dir={json.dumps(str(out))}",)
    plan = prepare(SMOKE, overrides, "local", ports={"rendezvous": free_port()}).plan
    attempt = run_folder(out, plan.name).new_attempt(plan, "local")
    trainer = next(p for p in plan.processes if p.role == "trainer")
    proc = trainer.resolved(NodeContext(0, ("127.0.0.1",), str(attempt.path)))
    return timed(list(proc.argv), {**os.environ, **proc.env})


def spread(values: list[float], unit: str = "s", signed: bool = False) -> str:
    """`12.3 s (11.9 to 13.0, n=5)`: the median and the range."""
    f = "+.2f" if signed else ".1f"
    lo, hi = min(values), max(values)
    return f"{statistics.median(values):{f}} {unit} ({lo:{f}} to {hi:{f}}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs each way (median of N)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vft-bench-") as tmp:
        base = Path(tmp)
        print("warm-up run (DeepSpeed op cache) ...", flush=True)
        via_vft(base / "warmup")
        vft_runs, hand_runs = [], []
        for i in range(args.repeat):
            # alternating which goes first, so neither always runs on the warmer machine
            for way in ("vft", "hand") if i % 2 == 0 else ("hand", "vft"):
                if way == "vft":
                    vft_runs.append(via_vft(base / f"vft-{i}"))
                else:
                    hand_runs.append(by_hand(base / f"hand-{i}"))
            print(
                f"repeat {i + 1}: vft run {vft_runs[-1][0]:.1f} s, by hand {hand_runs[-1][0]:.1f} s",
                flush=True,
            )
    walls = [w for w, _, _ in vft_runs]
    hands = [w for w, _, _ in hand_runs]
    own = [w - span for w, _, span in vft_runs]
    overheads = [v - h for v, h in zip(walls, hands, strict=True)]
    print(
        f"smoke run, vft run: wall {spread(walls)}, "
        f"peak memory {statistics.median(m for _, m, _ in vft_runs):.0f} MiB"
    )
    print(
        f"accelerate launch by hand: wall {spread(hands)}, "
        f"peak memory {statistics.median(m for _, m, _ in hand_runs):.0f} MiB"
    )
    print(f"vft run overhead (paired differences): {spread(overheads, signed=True)} (target < 2 s)")
    # the A/B difference is within run-to-run noise; this isolates vft's own time
    print(f"vft run time outside accelerate launch (wall - trainer lifetime): {spread(own)}")


if __name__ == "__main__":
    main()
