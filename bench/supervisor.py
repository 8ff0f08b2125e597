"""Supervisor figures: readiness latency, start-up against `sleep 30`, teardown, log relay.

    python bench/supervisor.py                  # the issue's numbers (about 2 minutes)
    python bench/supervisor.py --slow-server 10 # a shorter "slow server" case

Real processes throughout (the fixture programs under tests/fixtures/procs), run by the
real supervisor with echo off unless said otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from vft.core.node.logrelay import VERBOSE_VAR
from vft.core.node.supervisor import run_node
from vft.core.plan import NodeContext, Plan, Process
from vft.core.runs.folders import Attempt, run_folder
from vft.testing import plan_of

PROCS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "procs"
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fixture(name: str, script: str, *args: object, role: str = "trainer", ready: str | None = None):
    argv = (PY, str(PROCS / script), *map(str, args))
    return Process(role, name, 0, (), argv, {"PYTHONUNBUFFERED": "1"}, ready)


def make_plan(*processes: Process, **run: object) -> Plan:
    options = {"ready_timeout_s": 600.0, "stop_grace_s": 10.0, **run}
    return plan_of(*processes, name="bench", **options)


def attempt_for(root: Path, plan: Plan) -> Attempt:
    return run_folder(root, plan.name).new_attempt(plan, "local")


def run(plan: Plan, attempt: Attempt, echo: bool = False) -> int:
    return run_node(plan, attempt, NodeContext(0, ("127.0.0.1",), str(attempt.path)), echo=echo)


def read_time(path: Path) -> float:
    return float(path.read_text())


def server(port: int, *args: object) -> Process:
    """The fixture HTTP server as the plan's inference process, ready on /health."""
    return fixture(
        "inference", "server.py", "--port", port, *args,
        role="inference", ready=f"http://127.0.0.1:{port}/health",
    )  # fmt: skip


# -- 1. readiness latency ----------------------------------------------------------------
def readiness(root: Path, runs: int) -> list[float]:
    latencies = []
    for i in range(runs):
        port, healthy = free_port(), root / f"healthy-{i}"
        delay = 0.3 + random.uniform(0, 0.4)  # so server and poller are not phase-locked
        plan = make_plan(
            server(port, "--delay", f"{delay:.3f}", "--healthy-file", healthy),
            fixture(
                "trainer", "trainer.py", "--wait-port", port, "--steps", "1", "--step-s", "0.6"
            ),
        )
        attempt = attempt_for(root, plan)
        assert run(plan, attempt) == 0
        latencies.append(attempt.node(0)["ready_at"] - read_time(healthy))
    return latencies


# -- 2. launch to trainer start, against `server & sleep 30 && trainer` ------------------
def tutorial(root: Path, server_s: float, load_s: float, tag: str) -> dict[str, float]:
    """The tutorial's shell line, for real: the trainer checks the server once it has loaded."""
    port = free_port()
    started, first, healthy = (root / f"{tag}-{n}" for n in ("started", "first", "healthy"))
    server = f"{PY} {PROCS / 'server.py'} --port {port} --delay {server_s} --healthy-file {healthy}"
    trainer = (
        f"{PY} {PROCS / 'trainer.py'} --steps 0 --load-s {load_s} --check-once {port} "
        f"--started-file {started} --first-step-file {first}"
    )
    t0 = time.time()
    shell = subprocess.Popen(
        [
            "sh",
            "-c",
            f"{server} & SERVER=$!; sleep 30 && {trainer}; echo $? > {root}/{tag}-rc; kill $SERVER",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    shell.wait()
    code = int((root / f"{tag}-rc").read_text())
    return {
        "trainer_start": read_time(started) - t0,
        # a crashed run's shell kills the server, possibly before it came up
        "ready": read_time(healthy) - t0 if healthy.exists() else float("nan"),
        "first_step": read_time(first) - t0 if code == 0 else float("nan"),
        "crashed": float(code != 0),
    }


def vft_startup(
    root: Path, server_s: float, load_s: float, mode: str, tag: str
) -> dict[str, float]:
    port = free_port()
    started, first = root / f"{tag}-started", root / f"{tag}-first"
    plan = make_plan(
        server(port, "--delay", server_s),
        fixture(
            "trainer",
            "trainer.py",
            "--steps",
            "1",
            "--step-s",
            "0.5",
            "--load-s",
            load_s,
            "--wait-port",
            port,
            "--started-file",
            started,
            "--first-step-file",
            first,
        ),
        trainer_start=mode,
    )
    attempt = attempt_for(root, plan)
    t0 = time.time()
    assert run(plan, attempt) == 0
    return {
        "trainer_start": read_time(started) - t0,
        "ready": attempt.node(0)["ready_at"] - t0,
        "first_step": read_time(first) - t0,
        "crashed": 0.0,
    }


def startup(root: Path, servers: list[float], load_s: float) -> dict[tuple[str, float], dict]:
    """Every case at once in threads (they mostly sleep), so this part lasts ~max(45, 30+load)."""
    results: dict[tuple[str, float], dict] = {}
    jobs = []
    for s in servers:
        jobs.append((("sleep 30", s), lambda s=s: tutorial(root, s, load_s, f"tut{s}")))
        for mode in ("overlap", "after_ready"):
            jobs.append(((mode, s), lambda s=s, m=mode: vft_startup(root, s, load_s, m, f"{m}{s}")))
    threads = [
        threading.Thread(target=lambda k=k, f=f: results.__setitem__(k, f())) for k, f in jobs
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# -- 3. teardown ------------------------------------------------------------------------
def teardown(root: Path, stubborn: int, grace: float) -> float:
    """Seconds from the trainer's exit to run_node returning."""
    procs = [fixture(f"inference-{i}", "stubborn.py", role="inference") for i in range(stubborn)]
    if not stubborn:
        port = free_port()
        procs = [fixture("inference", "server.py", "--port", port, role="inference")]
    plan = make_plan(*procs, fixture("trainer", "trainer.py", "--steps", "1"), stop_grace_s=grace)
    attempt = attempt_for(root, plan)
    assert run(plan, attempt) == 0
    node = attempt.node(0)
    return node["ended_at"] - node["processes"]["trainer"]["ended_at"]


# -- 4. log relay throughput --------------------------------------------------------------
@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def flood(root: Path, mb: int, how: str, tag: str) -> tuple[float, float, float]:
    """(the flooding child's own wall time, the CPU seconds of whatever relays its output,
    the child's own CPU seconds) for `mb` MiB of 100-byte lines.

    how: "devnull" (the issue's baseline), "pipe" (`| cat > /dev/null`: what any relay
    through a pipe costs before it does anything), "file" (`> file`, what a shell redirect costs,
    no vft), "log" (supervised: log file only), "console" (supervised: log + the quiet live
    merge, the default), "console -v" (log + everything live). The relay's CPU is the
    supervisor's (this process: its relay, console and main-loop threads) for the supervised
    ways, `cat`'s for "pipe", the kernel's (in the child's) for the others.
    """
    self0, children0 = cpu_s(resource.RUSAGE_SELF), cpu_s(resource.RUSAGE_CHILDREN)
    wall, cat_cpu = _flood(root, mb, how, tag)
    relay_cpu = cpu_s(resource.RUSAGE_SELF) - self0
    children = cpu_s(resource.RUSAGE_CHILDREN) - children0
    if cat_cpu is not None:  # cat is a child too: its share is the relay's
        return wall, cat_cpu, children - cat_cpu
    return wall, relay_cpu, children


def _flood(root: Path, mb: int, how: str, tag: str) -> tuple[float, float | None]:
    result = root / f"flood-{tag}"
    argv = [PY, str(PROCS / "flood.py"), "--mb", str(mb), "--result", str(result)]
    if how == "pipe":  # the kernel's own cost of a pipe: child | cat > /dev/null
        with open(os.devnull, "wb") as null:
            cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=null)
            subprocess.run(argv, stdout=cat.stdin, check=True)
            assert cat.stdin is not None
            cat.stdin.close()
            _, _, usage = os.wait4(cat.pid, 0)  # cat's own CPU, reaped here
            cat.returncode = 0
        return read_time(result), usage.ru_utime + usage.ru_stime
    if how in ("devnull", "file"):
        with open(os.devnull if how == "devnull" else root / "flood.out", "wb") as out:
            subprocess.run(argv, stdout=out, check=True)
        return read_time(result), None
    plan = make_plan(fixture("trainer", "flood.py", *argv[2:]))
    attempt = attempt_for(root, plan)
    if how.startswith("console"):
        saved = os.environ.pop(VERBOSE_VAR, None)
        if how == "console -v":
            os.environ[VERBOSE_VAR] = "1"
        try:
            with stdout_to_devnull():
                assert run(plan, attempt, echo=True) == 0
        finally:
            os.environ.pop(VERBOSE_VAR, None)
            if saved is not None:
                os.environ[VERBOSE_VAR] = saved
    else:
        assert run(plan, attempt) == 0
    return read_time(result), None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="readiness samples")
    parser.add_argument("--fast-server", type=float, default=5.0)
    parser.add_argument("--slow-server", type=float, default=45.0)
    parser.add_argument(
        "--trainer-load",
        type=float,
        default=10.0,
        help="simulated trainer start-up (model load, DeepSpeed init), seconds",
    )
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="flood repetitions (median)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vft-bench-"))

    lat = readiness(root, args.runs)
    print(
        f"readiness detection latency: median {statistics.median(lat) * 1000:.0f} ms, "
        f"max {max(lat) * 1000:.0f} ms over {len(lat)} runs (target < 500 ms)"
    )

    servers = [args.fast_server, args.slow_server]
    print(
        f"\nlaunch to trainer start / server ready / first step possible, seconds "
        f"(trainer load simulated: {args.trainer_load:g} s):"
    )
    results = startup(root, servers, args.trainer_load)
    for s in servers:
        for mode in ("sleep 30", "after_ready", "overlap"):
            r = results[(mode, s)]
            first = "crashed: server not ready" if r["crashed"] else f"{r['first_step']:5.1f}"
            ready = "    -" if r["ready"] != r["ready"] else f"{r['ready']:5.1f}"  # NaN
            label = "tutorial sleep 30" if mode == "sleep 30" else f"vft {mode}"
            print(
                f"  server {s:4g} s  {label:<18} trainer start {r['trainer_start']:5.1f}  "
                f"ready {ready}  first step {first}"
            )
        tut, over = results[("sleep 30", s)], results[("overlap", s)]
        if tut["crashed"]:
            print(
                f"  -> sleep 30 races: its trainer checked the server at "
                f"{tut['trainer_start'] + args.trainer_load:.1f} s, the server needs {s:g} s; "
                f"vft overlap trained from {over['first_step']:.1f} s"
            )
        else:
            print(
                f"  -> vft overlap saves {tut['first_step'] - over['first_step']:.1f} s "
                f"({tut['trainer_start'] - tut['ready']:.1f} s of the sleep were wasted)"
            )

    print("\nteardown after the trainer exits:")
    print(f"  well-behaved server:                   {teardown(root, 0, 10):.2f} s")
    print(f"  1 SIGTERM-ignoring child, grace 10 s:  {teardown(root, 1, 10):.2f} s")
    print(
        f"  3 SIGTERM-ignoring children, grace 2 s: {teardown(root, 3, 2):.2f} s "
        "(one wait for all, not 3 x 2 s)"
    )

    print(
        f"\nlog relay: a child writing {args.mb} MiB of 100-byte lines "
        f"(its own wall time, median and best of {args.repeat}, interleaved; "
        "CPU of the relay: the supervisor's threads, or cat's):"
    )
    ways = {
        "devnull": "to /dev/null",
        "pipe": "to a pipe (| cat >/dev/null)",
        "file": "to a file (shell >, no vft)",
        "log": "vft: log file",
        "console": "vft: log + quiet console",
        "console -v": "vft: log + console -v",
    }
    times: dict[str, list[tuple[float, float, float]]] = {how: [] for how in ways}
    for i in range(args.repeat):  # interleaved, so a busy neighbour hurts every row alike
        for how in ways:
            times[how].append(flood(root, args.mb, how, f"{how}{i}".replace(" ", "")))
    base = statistics.median(w for w, _, _ in times["devnull"])
    for how, label in ways.items():
        walls = [w for w, _, _ in times[how]]
        med, best = statistics.median(walls), min(walls)
        relay_cpu = statistics.median(c for _, c, _ in times[how])
        child_cpu = statistics.median(c for _, _, c in times[how])
        rel = "" if how == "devnull" else f" {(med / base - 1) * 100:+4.0f}%"
        print(
            f"  {label + ':':<30} {med:5.2f} s (best {best:.2f}){rel:<6}  "
            f"relay CPU {relay_cpu:5.2f} s, child CPU {child_cpu:5.2f} s"
        )


if __name__ == "__main__":
    main()
