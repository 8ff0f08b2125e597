"""The one node entry: every backend starts a node's processes through this and nothing else.

    python -m vft.core.node RUN_DIR [--node-rank N] [--addresses a,b,...] [--no-echo]

`start_node` is the same thing as a function, for a backend that is already a Python
process on the node (the Modal container, the local backend in the foreground). Both
read RUN_DIR/plan.json and run the supervisor for node N until it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from vft.core.errors import UserError
from vft.core.plan import NodeContext
from vft.core.runs import Attempt, RunStatus

LOCALHOST = ("127.0.0.1",)


def node_argv(
    run_dir: str,
    rank: int | str = 0,
    addresses: Sequence[str] | str = LOCALHOST,
    *,
    python: str = "python",
    echo: bool = True,
) -> list[str]:
    """The argv a backend runs on each node (never a shell string).

    `rank` and `addresses` may be a scheduler's variables (e.g. "$SLURM_NODEID") when the
    command goes into a batch script; `python` is the interpreter on the node.
    """
    joined = addresses if isinstance(addresses, str) else ",".join(addresses)
    argv = [python, "-m", "vft.core.node", run_dir, "--node-rank", str(rank)]
    argv += ["--addresses", joined]
    return argv if echo else [*argv, "--no-echo"]


def start_node(
    run_dir: str | Path,
    rank: int = 0,
    addresses: Sequence[str] = LOCALHOST,
    *,
    echo: bool = True,
) -> int:
    """Run node `rank` of the plan in `run_dir` to its end; its exit code.

    Raises UserError, before anything starts, when the folder holds no readable plan or
    the plan does not fit this node.
    """
    path = Path(run_dir).resolve()
    if not (path / "plan.json").is_file():
        raise UserError(
            f"RUN_DIR: {path} has no plan.json (an attempt folder is needed; on several "
            "nodes, run.output_dir must be on a filesystem every node mounts)"
        )
    attempt = Attempt(path)
    try:
        plan = attempt.plan()
    except (ValueError, KeyError) as exc:
        raise UserError(f"RUN_DIR: {path / 'plan.json'} is not a valid plan: {exc}") from None
    nodes = tuple(a.strip() for a in addresses if a.strip())
    if len(nodes) < plan.nodes:
        raise UserError(
            f"--addresses: the plan has {plan.nodes} nodes, got {len(nodes)} address(es)"
        )
    if not 0 <= rank < plan.nodes:
        raise UserError(f"--node-rank: {rank} is not a node of this plan (0..{plan.nodes - 1})")
    try:
        from vft.core.node.supervisor import run_node  # the heavy part: on use only

        return run_node(plan, attempt, NodeContext.here(rank, nodes, str(path)), echo=echo)
    except UserError as exc:  # refused before anything started: the record says so too
        if rank == 0:
            with contextlib.suppress(Exception):
                attempt.update(
                    status=RunStatus.FAILED,
                    ended_at=time.time(),
                    exit_code=exc.exit_code,
                    failed={"process": None, "reason": exc.line(), "exit_code": exc.exit_code},
                )
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vft.core.node", description="Run one node of a plan until it ends."
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the attempt folder with plan.json")
    parser.add_argument("--node-rank", type=int, default=0, help="this node's rank (0)")
    parser.add_argument(
        "--addresses", default="127.0.0.1", help="every node's address, in rank order"
    )
    parser.add_argument("--no-echo", action="store_true", help="no live log merge on stdout")
    args = parser.parse_args(argv)
    try:
        return start_node(
            args.run_dir, args.node_rank, args.addresses.split(","), echo=not args.no_echo
        )
    except UserError as exc:
        print(f"vft: error: {exc.line()}", file=sys.stderr)
        return 2
