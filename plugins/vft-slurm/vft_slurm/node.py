"""What the batch script runs inside the job: `python -m vft_slurm.node COMMAND ...`.

    addresses             once, in the batch step: every node's address, in SLURM_NODEID order
    install RUN_DIR       once, in the batch step: `environment.install`, as a local run does
    finish RUN_DIR RC     after the step: the run's outcome into run.json; prints the exit code

Each node's part of the plan runs through vft's public node entry (`node_argv`), as on
every backend. Slurm is reached through its commands only.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

_NODE_ADDR = re.compile(r"\bNodeName=(\S+).*?\bNodeAddr=(\S+)")


def hostnames(nodelist: str) -> list[str]:
    """Slurm's expansion of a node list (`node[1-2]` -> node1, node2), in node-id order."""
    out = subprocess.run(
        ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def node_addrs(nodelist: str) -> dict[str, str]:
    """NodeName -> NodeAddr as slurm.conf declares them (NodeAddr defaults to the name)."""
    out = subprocess.run(
        ["scontrol", "show", "node", "-o", nodelist], capture_output=True, text=True, check=False
    )
    return {m[1]: m[2] for m in map(_NODE_ADDR.search, out.stdout.splitlines()) if m}


def resolve(host: str) -> str:
    """An IPv4 address for `host`, so that every node connects to the same interface."""
    try:
        return socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0]
    except OSError:
        return host  # leave it to the resolver of whoever connects


def addresses(nodelist: str) -> list[str]:
    names = hostnames(nodelist)
    declared = node_addrs(nodelist)
    return [resolve(declared.get(name, name)) for name in names]


def install(run_dir: Path) -> int:
    """`environment.install`, once per job, the way a local run installs it."""
    from vft.plugin import Attempt, install_environments

    attempt = Attempt(run_dir)
    for note in install_environments(attempt.plan().install, attempt.log_path("install")):
        print(f"vft: {note}", flush=True)
    return 0


def finish(run_dir: Path, step_code: int) -> int:
    """Record the outcome (see verdict.py) and return the job's exit code."""
    from vft.plugin import Attempt
    from vft_slurm.verdict import outcome

    attempt = Attempt(run_dir)
    result = outcome(attempt, step_code)
    attempt.update(**result, ended_at=time.time())
    return result["exit_code"]


def main(argv: list[str]) -> int:
    match argv:
        case ["addresses"]:
            print(",".join(addresses(os.environ["SLURM_JOB_NODELIST"])))
            return 0
        case ["install", run_dir]:
            return install(Path(run_dir))
        case ["finish", run_dir, code]:
            print(finish(Path(run_dir), int(code)))
            return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
