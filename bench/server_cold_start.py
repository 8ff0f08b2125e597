"""Cold start of the CPU inference server: `vllm serve` started to /health answering 200.

The server is started exactly as the planner writes it for examples/recipes/smoke-server.toml
(argv and env; a free port, loopback), on the offline tiny model; median of 3 starts.
Run from the repository root: python bench/server_cold_start.py [--runs 3]
Needs the CPU inference stack: pip install torch==2.13.0 -e ".[train,inference-cpu]"
./packaging/cpu-shims/*
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RECIPE = ROOT / "examples" / "recipes" / "smoke-server.toml"


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    started: float  # time.perf_counter() at Popen
    ready_s: float  # seconds to the first /health 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def planned_server(
    run_dir: Path, overrides: tuple[str, ...] = ()
) -> tuple[list[str], dict[str, str], str]:
    """(argv, env, url) of the plan's inference process for `run_dir`, on a free port."""
    from vft.core.plan import NodeContext, Role
    from vft.launch import prepare

    port = free_port()
    plan = prepare(RECIPE, overrides, "local", ports={"inference": port}).plan
    ctx = NodeContext(0, ("127.0.0.1",), str(run_dir))
    proc = next(p for p in plan.processes if p.role == Role.INFERENCE).resolved(ctx)
    argv = list(proc.argv)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    env = {**os.environ, **proc.env}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return argv, env, f"http://127.0.0.1:{port}"


def start(run_dir: Path, overrides: tuple[str, ...] = (), timeout_s: float = 600) -> Server:
    """Start the plan's server and wait for /health; the time it took is `ready_s`."""
    from vft.train.cpu_stack import ensure_vllm_alias

    ensure_vllm_alias()
    argv, env, url = planned_server(run_dir, overrides)
    log = run_dir / f"server-{url.rsplit(':', 1)[1]}.log"
    started = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-30:]
            raise SystemExit(f"vllm serve exited with {proc.returncode}:\n" + "\n".join(tail))
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return Server(url, proc, log, started, time.perf_counter() - started)
        except OSError:
            pass
        if time.perf_counter() - started > timeout_s:
            stop(Server(url, proc, log, started, 0.0))
            raise SystemExit(f"vllm serve did not answer /health within {timeout_s:.0f} s")
        time.sleep(0.1)


def stop(server: Server) -> None:
    """TERM the server's process group; KILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, sig)
        try:
            server.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        with contextlib.suppress(ProcessLookupError):  # workers of the group
            os.killpg(server.proc.pid, signal.SIGKILL)
        return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from vft.train import tiny

    work = Path(tempfile.mkdtemp(prefix="vft-cold-start-"))
    try:
        tiny.build(work / "initial-model")
        times = []
        for i in range(args.runs):
            server = start(work)
            stop(server)
            times.append(server.ready_s)
            print(f"start {i + 1}: {server.ready_s:.1f} s to /health", flush=True)
        print(
            f"vllm serve cold start (tiny model, --enforce-eager, {os.cpu_count()} CPUs): "
            f"median {statistics.median(times):.1f} s, min {min(times):.1f} s, "
            f"max {max(times):.1f} s over {len(times)} starts"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
