"""`vft agent RUN_DIR --node-rank N --addresses a,b,...`: one node's part of a plan.

What a backend runs on each machine (the local backend's --detach, a Modal container, a
cluster node): it reads RUN_DIR/plan.json and runs the supervisor for that node.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("agent")
@click.argument("run_dir", type=click.Path(file_okay=False), metavar="RUN_DIR")
@click.option("--node-rank", type=int, default=0, show_default=True, help="This node's rank.")
@click.option(
    "--addresses",
    default="127.0.0.1",
    show_default=True,
    help="Every node's address, comma-separated, in rank order.",
)
@click.option("--echo/--no-echo", default=True, help="Print the live log merge on stdout.")
def agent_command(run_dir: str, node_rank: int, addresses: str, echo: bool) -> None:
    """Run node --node-rank of the plan in RUN_DIR until it ends; exit with its code."""
    from vft.core.errors import UserError
    from vft.core.plan import NodeContext
    from vft.core.runs import Attempt
    from vft.core.supervisor import run_node

    path = Path(run_dir).resolve()
    if not (path / "plan.json").is_file():
        raise UserError(f"RUN_DIR: {run_dir} has no plan.json (is it an attempt folder?)")
    attempt = Attempt(path)
    try:
        plan = attempt.plan()
    except (ValueError, KeyError) as exc:
        raise UserError(f"RUN_DIR: {path / 'plan.json'} is not a valid plan: {exc}") from None
    nodes = tuple(a.strip() for a in addresses.split(",") if a.strip())
    if len(nodes) < plan.nodes:
        raise UserError(
            f"--addresses: the plan has {plan.nodes} nodes, got {len(nodes)} address(es)"
        )
    if not 0 <= node_rank < plan.nodes:
        raise UserError(
            f"--node-rank: {node_rank} is not a node of this plan (0..{plan.nodes - 1})"
        )
    # sys.exit, not ctx.exit: click returns (and `python -m vft` drops) a ctx.exit code
    ctx = NodeContext.here(node_rank, nodes, str(path))
    sys.exit(run_node(plan, attempt, ctx, echo=echo))
