"""The run's outcome from its nodes' records, not from Slurm's one number for a step.

Slurm reports the highest exit code of a step's tasks: when node 1 fails with 3 and Slurm
then stops node 0 (SIGTERM, 143), that is 143. Each node's supervisor records its own end
in `nodes/node-<rank>.json`; the node that *failed* (not one that was stopped) first is
the one the user needs, with the process and the reason.
"""

from __future__ import annotations

from typing import Any

from vft.plugin import Attempt


def first_failure(attempt: Attempt) -> dict[str, Any] | None:
    """The record of the node that failed first, or None when no node failed."""
    failed = [n for n in attempt.nodes().values() if n.get("status") == "failed"]
    if not failed:
        return None
    return min(failed, key=lambda n: n.get("ended_at") or float("inf"))


def outcome(attempt: Attempt, step_code: int) -> dict[str, Any]:
    """status, exit_code and failed (node, process, reason) for run.json."""
    node = first_failure(attempt)
    if node is not None:
        failed = {**(node.get("failed") or {}), "node": node.get("rank")}
        return {"status": "failed", "exit_code": int(node.get("exit_code") or 1), "failed": failed}
    if step_code != 0:  # an agent that ended before its supervisor could record anything
        why = f"a node's agent exited with code {step_code}; see slurm-JOBID.out in the run folder"
        return {"status": "failed", "exit_code": step_code, "failed": {"reason": why}}
    return {"status": "succeeded", "exit_code": 0, "failed": None}
