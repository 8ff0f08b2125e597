"""A local run's attempts, restarted after a transient failure: in the foreground, or as
the detached agent `python -m vft.backends.local.agent RUN_DIR --restarts N`.

Each attempt's node runs in this process through the one node entry (`start_node`), so
the supervisor's pid is this process's, as for a run without restarts: `vft stop` sends
it SIGTERM, the supervisor stops in order, records "stopped", and a stop never restarts.
A new attempt is recorded with this process's pid before it starts, so a `vft stop`
between two attempts finds it too.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vft.core.runs.folders import Attempt


def agent_argv(run_dir: Path, restarts: int, *, python: str = "python") -> list[str]:
    """The detached agent's argv (never a shell string)."""
    return [python, "-m", "vft.backends.local.agent", str(run_dir), "--restarts", str(restarts)]


def run_attempts(attempt: Attempt, restarts: int, *, echo: bool, detached: bool = False) -> int:
    """Run `attempt`'s node, then restarts while a failure is transient; the last code."""
    from vft.backends.restarts import run_restarting
    from vft.core.node.entry import start_node

    if not restarts:
        return start_node(attempt.path, echo=echo)
    record = None
    if detached:
        from vft.core.node.identity import create_time

        me = os.getpid()
        record = {"detached": True, "supervisor_pid": me, "supervisor_create_time": create_time(me)}

    def once(_: object, a: Attempt) -> int:
        return start_node(a.path, echo=echo)

    def note(text: str) -> None:
        print(f"vft: {text}", file=sys.stderr, flush=True)

    _, _, code = run_restarting(
        once, attempt.plan(), attempt, "local", restarts, note, record=record
    )
    return code


def main(argv: list[str] | None = None) -> int:
    from vft.core.errors import UserError

    parser = argparse.ArgumentParser(
        prog="python -m vft.backends.local.agent",
        description="Run a local attempt detached, restarting it after a transient failure.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the attempt folder with plan.json")
    parser.add_argument("--restarts", type=int, default=0, help="restarts allowed (0)")
    args = parser.parse_args(argv)
    try:
        return run_attempts(
            Attempt(Path(args.run_dir).resolve()), args.restarts, echo=False, detached=True
        )
    except UserError as exc:
        print(f"vft: error: {exc.line()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
