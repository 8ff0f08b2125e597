"""Where the CPU smoke run's start-up goes: from `vft run` to the first training step.

    python bench/startup.py [--repeat N] [--baseline DIR] [--imports] [--op]

Each repeat runs the smoke recipe (1 step, `-v`, a fresh output folder) and timestamps
every console line as it arrives; the phases are cut at lines every run prints:

- vft       `vft run` started -> the supervisor's `started trainer` (CLI, plan, preflight)
- launcher  -> the trainer program's first line (accelerate launch, the interpreter;
              a tree whose trainer does not print `loading torch` has none)
- trainer   -> `ready to train after ...` (the trainer's own phases, from that line:
              imports, model, environment, trainer set-up with DeepSpeed)
- step 1    -> the first progress line
- end       -> `vft run` exits (checkpoint, teardown)

`--baseline DIR` runs another tree of vft (e.g. `git archive HEAD | tar -x -C DIR`)
through PYTHONPATH, interleaved with this one, and prints the ratio of the medians.
`--imports` times the trainer's imports one by one in a fresh interpreter (TRL with and
without vLLM); `--op` times DeepSpeed's CPU communication op: a cold build into an empty
extensions folder, then a cached load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "examples" / "recipes" / "smoke.toml"
READY = re.compile(r"ready to train after ([\d.]+) s \((.*)\)")
PHASE = re.compile(r"(\w+) ([\d.]+) s")


def smoke_run(out: Path, tree: Path | None) -> dict[str, float]:
    """One timed `vft run -v` of the smoke recipe (1 step); its phases in seconds."""
    env = {k: v for k, v in os.environ.items() if k != "VFT_VERBOSE"}
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    cli = (tree or ROOT) / "vft" / "cli" / "run_cmd.py"
    quiet_by_default = "--verbose" in cli.read_text()  # an older tree shows all anyway
    argv = [sys.executable, "-m", "vft", "run", str(SMOKE), *(["-v"] if quiet_by_default else [])]
    argv += ["--set", f"run.output_dir={json.dumps(str(out))}", "--set", "trainer.max_steps=1"]
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=tree or ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen: dict[str, float] = {}
    own: dict[str, float] = {}
    lines = []
    for line in proc.stdout:
        now = time.monotonic() - start
        lines.append(line)
        if "started trainer" in line:
            seen.setdefault("vft", now)
        elif "vft.train: loading torch" in line:
            seen.setdefault("launcher", now)  # the trainer program's first line
        if "ready to train after" in line:
            seen.setdefault("trainer", now)
            match = READY.search(line)
            if match:
                own = {k: float(v) for k, v in PHASE.findall(match.group(2))}
        if "step 1/" in line and "| reward" in line:
            seen.setdefault("step 1", now)
    code = proc.wait()
    if code:
        raise SystemExit(f"vft run failed ({code}):\n{''.join(lines[-40:])}")
    seen["end"] = time.monotonic() - start
    # the old trainer printed no ready line: its set-up ends at its first step
    seen.setdefault("trainer", seen.get("step 1", seen["end"]))
    phases: dict[str, float] = {}
    last = 0.0
    for name in ("vft", "launcher", "trainer", "step 1", "end"):
        if name in seen:
            phases[name] = seen[name] - last
            last = seen[name]
    phases["to step 1"] = seen.get("step 1", seen["end"])
    phases["total"] = seen["end"]
    return phases | {f"  {k}": v for k, v in own.items()}


def summary(runs: list[dict[str, float]]) -> dict[str, tuple[float, float, float]]:
    """name -> (median, min, max) over the runs."""
    names = dict.fromkeys(k for r in runs for k in r)
    return {
        n: (statistics.median(v), min(v), max(v))
        for n in names
        if (v := [r[n] for r in runs if n in r])
    }


def show(title: str, runs: list[dict[str, float]]) -> None:
    print(f"{title} ({len(runs)} runs): median [min-max] s")
    for name, (med, lo, hi) in summary(runs).items():
        print(f"  {name:<14} {med:6.1f}  [{lo:.1f}-{hi:.1f}]")


IMPORTS = """
import json, sys, time
with_vllm = sys.argv[1] == "1"
t = {}
def step(name, stmt):
    s = time.perf_counter(); exec(stmt, globals()); t[name] = round(time.perf_counter() - s, 2)
step("torch", "import torch")
step("transformers", "import transformers; from transformers import AutoTokenizer")
step("datasets", "from datasets import Dataset")
if not with_vllm:
    step("(vft: trl without vllm)", "from vft.train.main import without_vllm; without_vllm()")
step("trl GRPOConfig", "from trl import GRPOConfig")
step("trl GRPOTrainer", "from trl import GRPOTrainer")
step("deepspeed", "import deepspeed")
step("verifiers.v1", "import verifiers.v1")
t["vllm imported"] = "vllm" in sys.modules
print(json.dumps(t))
"""


def imports(repeat: int) -> None:
    """Each import's own time, in a fresh interpreter, TRL with and without vLLM."""
    for with_vllm in (True, False):
        runs = []
        for _ in range(repeat):
            done = subprocess.run(
                [sys.executable, "-c", IMPORTS, "1" if with_vllm else "0"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"imports, TRL {'with' if with_vllm else 'without'} vLLM: median s")
        for name in runs[0]:
            values = [r[name] for r in runs]
            shown = values[0] if isinstance(values[0], bool) else statistics.median(values)
            print(f"  {name:<26} {shown}")


OP = """
import time
from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder
s = time.perf_counter(); ShareMemCommBuilder().load(); print(round(time.perf_counter() - s, 2))
"""


def op() -> None:
    """DeepSpeed's CPU communication op: cold build, then cached load."""
    with tempfile.TemporaryDirectory(prefix="vft-ext-") as tmp:
        env = {**os.environ, "TORCH_EXTENSIONS_DIR": tmp}
        for label in ("cold build", "cached load"):
            done = subprocess.run(
                [sys.executable, "-c", OP], env=env, capture_output=True, text=True, check=True
            )
            took = done.stdout.strip().splitlines()[-1]  # after DeepSpeed's own lines
            print(f"DeepSpeed CPU communication op, {label}: {took} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another vft tree to compare with")
    parser.add_argument("--imports", action="store_true", help="time the imports")
    parser.add_argument("--op", action="store_true", help="time DeepSpeed's op build")
    args = parser.parse_args()
    if args.imports:
        imports(args.repeat)
    if args.op:
        op()
    if args.imports or args.op:
        return
    trees = {"this tree": None} | ({"baseline": args.baseline} if args.baseline else {})
    results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="vft-startup-") as tmp:
        print("warm-up run (caches, page cache) ...", flush=True)
        for tree in trees.values():
            smoke_run(Path(tmp) / "warm", tree)
        for i in range(args.repeat):
            for name, tree in trees.items():  # interleaved: the machine's load hits both
                results[name].append(smoke_run(Path(tmp) / f"{name}-{i}".replace(" ", "-"), tree))
                took = results[name][-1]
                print(
                    f"run {i + 1} {name}: first step at {took['to step 1']:.1f} s, "
                    f"exit at {took['total']:.1f} s",
                    flush=True,
                )
    for name, runs in results.items():
        show(name, runs)
    if args.baseline:
        now, before = summary(results["this tree"]), summary(results["baseline"])
        for key in ("to step 1", "total"):
            print(f"{key}: {before[key][0]:.1f} s -> {now[key][0]:.1f} s "
                  f"(x{before[key][0] / max(now[key][0], 1e-9):.2f} faster)")  # fmt: skip


if __name__ == "__main__":
    main()
