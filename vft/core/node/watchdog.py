"""The run's watchdog: a small process that outlives its supervisor and, when that dies
without ending the run in order (SIGKILL, a crash, the OOM killer), stops what it started.

The supervisor holds the write end of a pipe the watchdog blocks on. Ending in order, it
writes DONE; any other end closes the pipe with nothing written, and the watchdog stops
every process carrying the supervisor's marker and every recorded process group (see
sweep.py), then writes the run's end into the records. No polling, no pid to outlive: the
kernel closes the pipe however the supervisor dies. The watchdog runs in a session of its
own, so a terminal's Ctrl-C or hang-up reaches only the supervisor.

    python -m vft.core.node.watchdog --fd N --run-dir DIR --rank R --marker M --grace S
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DONE = b"D"


class Watchdog:
    """The supervisor's end: `done()` once nothing of the run is left running."""

    def __init__(self, popen: subprocess.Popen[bytes], fd: int) -> None:
        self.popen, self.fd = popen, fd

    @property
    def pid(self) -> int:
        return self.popen.pid

    @classmethod
    def start(cls, run_dir: Path, rank: int, marker: str, grace: float, log: Path) -> Watchdog:
        read_fd, write_fd = os.pipe()  # neither end is inherited by the run's processes
        argv = [sys.executable, "-m", "vft.core.node.watchdog", "--fd", str(read_fd)]
        argv += ["--run-dir", str(run_dir), "--rank", str(rank), "--marker", marker]
        argv += ["--grace", repr(grace), "--supervisor", str(os.getpid())]
        try:
            with open(log, "ab") as out:
                popen = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    pass_fds=(read_fd,),
                    start_new_session=True,
                )
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        return cls(popen, write_fd)

    def done(self, *, clean: bool = True) -> None:
        """Release the watchdog; unless `clean`, it sweeps what is left first."""
        with contextlib.suppress(OSError):
            if clean:
                os.write(self.fd, DONE)
            os.close(self.fd)
        if clean:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vft.core.node.watchdog")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--marker", required=True)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("--supervisor", type=int, default=0)
    args = parser.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    word = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(args.fd, 16):
            word += chunk
    if word == DONE:
        return 0
    _clean_up(args)
    return 0


def _clean_up(args: argparse.Namespace) -> None:
    """The supervisor is gone without ending the run: stop its processes, record the end."""
    from vft.core.node import sweep
    from vft.core.runs.folders import FINISHED, Attempt, RunStatus

    attempt = Attempt(Path(args.run_dir))
    node: dict = {}
    with contextlib.suppress(Exception):
        node = attempt.node(args.rank)
    grace = min(max(args.grace, 0.0), 600.0) if args.grace == args.grace else 10.0
    found = sweep.stop(args.marker, sweep.roots_of(node), grace)
    why = f"the supervisor (pid {args.supervisor}) died without stopping the run"
    what = f"the watchdog stopped {len(found)} process(es)" if found else "nothing was left"
    _say(f"watchdog: {why}; {what}" + (f": pids {found}" if found else ""))
    ended = time.time()
    with contextlib.suppress(Exception):
        if node and node.get("status") not in FINISHED:
            attempt.write_node(args.rank, {**node, "status": RunStatus.LOST, "ended_at": ended})
    if args.rank != 0:
        return
    with contextlib.suppress(Exception):
        if attempt.record().get("status") not in FINISHED:
            attempt.update(
                status=RunStatus.LOST,
                ended_at=ended,
                failed={"process": "vft", "reason": f"{why}; {what}", "exit_code": None},
            )


def _say(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
