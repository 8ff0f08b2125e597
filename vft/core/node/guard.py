"""A command run to its end unless vft is told to stop: then it is stopped, tree and all.

`vft run` installs environments (pip) before the supervisor exists. A SIGTERM or Ctrl-C
then must not leave pip (and the build backends it spawns) running, nor end vft without a
word: the command runs in a session of its own, the signal stops its whole tree, and
`Interrupted` tells the caller which signal it was, to record.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import IO

from vft.core.errors import UserError
from vft.core.node.procs import Trees, on_signals, terminate

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 5.0
TICK_S = 0.1


class Interrupted(UserError):
    """A signal stopped the command; `exit_code` is 128 + the signal, as a shell says."""

    def __init__(self, what: str, signum: int) -> None:
        self.signum = signum
        name = signal.Signals(signum).name
        super().__init__(f"{what} interrupted by {name}: stopped")
        self.exit_code = 128 + signum


def run(
    argv: list[str],
    *,
    what: str,
    stdout: IO[bytes] | int | None = None,
    stderr: IO[bytes] | int | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run `argv` to its end and return its exit code; on SIGINT/SIGTERM/SIGHUP stop its
    tree and raise Interrupted (`what` names it in the message)."""
    import subprocess

    received: list[int] = []
    with on_signals(STOP_SIGNALS, lambda signum, _: received.append(signum)):
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=None if env is None else dict(env),
            start_new_session=True,  # vft decides how it stops: the whole group at once
        )
        trees = Trees("")
        trees.add(popen.pid)
        while True:
            try:
                code = popen.wait(timeout=TICK_S)
                break
            except subprocess.TimeoutExpired:
                pass
            trees.refresh([popen.pid])
            if received:
                terminate([popen.pid], trees, GRACE_S)
                popen.wait()
                raise Interrupted(what, received[0])
    return code
