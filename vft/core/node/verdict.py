"""A failed process's own one-line verdict, found in its log; and whether a failed attempt
was transient (`classify`), so that it may restart from its checkpoint.

vft's programs end a failure with one line `vft.<program>: error: <what> (at <where>)`
(the trainer names the environment's exception there). A launcher may print more after it
(torchrun's ChildFailedError block), so the supervisor looks back for that line and shows
it first, before the log's last lines.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OWN_ERROR = re.compile(r"^(?:\[[\w-]+\] )?(vft[\w.]*: error: .+)$")
SCAN_BYTES = 1 << 20  # how far back from the end of a long log the verdict is looked for


def verdict(path: Path) -> str | None:
    """The newest `vft...: error: ...` line near the end of the log at `path`, if any."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - SCAN_BYTES))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        match = OWN_ERROR.match(line.strip())
        if match:
            return match.group(1)
    return None


# -- transient or not: whether a failed attempt may start again from its checkpoint --------


@dataclass(frozen=True)
class Transience:
    """Whether a finished attempt failed of something outside the run (a preemption, a
    lost node, a network timeout), so that running it again from its checkpoint can
    succeed; `reason` says what, in one line, for the user and the record."""

    transient: bool
    reason: str


#: signals that come from outside the program: a preempted container or a machine going
#: down (SIGTERM first, then SIGKILL), the kernel's OOM killer (SIGKILL)
OUTSIDE_SIGNALS = {signal.SIGKILL: "killed", signal.SIGTERM: "terminated"}

#: text in the failed process's log that marks a fault of the machines, not of the run:
#: (pattern, reason). A launcher reports a worker killed by a signal in its own words.
TRANSIENT_TEXT: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"Watchdog caught collective operation timeout|"
            r"ProcessGroupNCCL.{0,200}(?:timed out|Timeout)|"
            r"NCCL (?:communicator|operation|collective).{0,200}(?:timed out|timeout)",
            re.IGNORECASE,
        ),
        "an NCCL timeout",
    ),
    (
        re.compile(
            r"NCCL WARN.{0,200}(?:remote process exited|Connection closed by|"
            r"Connection reset by peer)|RendezvousConnectionError|"
            r"TCPStore.{0,200}(?:Connection reset by peer|Broken pipe|Connection refused)",
            re.IGNORECASE,
        ),
        "a lost node (a peer's connection broke)",
    ),
    # torchrun: "traceback : Signal 9 (SIGKILL) received by PID 123"
    (re.compile(r"Signal (?:9 \(SIGKILL\)|15 \(SIGTERM\)) received by PID"), "{proc} worker {sig}"),
    # accelerate's single-process launcher: "died with <Signals.SIGKILL: 9>."
    (re.compile(r"died with <Signals\.(?:SIGKILL: 9|SIGTERM: 15)>"), "{proc} worker {sig}"),
)
_SIGNAL_NAME = re.compile(r"SIGKILL|SIGTERM")

#: statuses that never restart: a stop asked for (vft stop, Ctrl-C, a budget) or no failure
NO_RESTART_STATUS = {
    "succeeded": "it succeeded",
    "stopped": "it was stopped (vft stop, Ctrl-C, or its budget)",
    "interrupted": "it was interrupted by a signal before it started",
    "dry-run": "it was a dry run",
}
REFUSAL_CODES = {2: "a refusal (exit code 2: a bad recipe or input)"}


def classify(
    status: str | None,
    failed: Mapping[str, Any] | None,
    exit_code: int | None,
    log_text: str = "",
    stop_reason: str | None = None,
) -> Transience:
    """Transient or not, from what an attempt's records say of its end; pure.

    `status`, `exit_code` and `stop_reason` are run.json's, `failed` its {"process",
    "reason", "exit_code"}, `log_text` the end of the failed process's log. Only a failure
    caused from outside the run is transient: a process killed by SIGKILL/SIGTERM that vft
    did not send, a lost supervisor (its node gone), an NCCL timeout or a broken peer
    connection in the log. An error in the run itself (a traceback, a refusal, a missing
    command, a readiness timeout) happens again on a restart, so it never restarts.
    """
    state = (status or "").split(":", 1)[0].strip()  # "stopped: budget" is a stop too
    if state in NO_RESTART_STATUS:
        return Transience(False, NO_RESTART_STATUS[state])
    if stop_reason:  # the run stopped itself (its budget), whatever its end looked like
        return Transience(False, f"it stopped itself ({stop_reason})")
    failed = failed or {}
    code = failed.get("exit_code", exit_code)
    proc = failed.get("process") or "the node"
    if isinstance(code, int) and code in REFUSAL_CODES:
        return Transience(False, REFUSAL_CODES[code])
    if state == "lost":  # "orphaned" is not: its processes still run, a restart would double them
        return Transience(True, "the run's supervisor was lost (its machine went away)")
    if state != "failed":
        return Transience(False, f"its status is {status!r}, not a failure")
    killed = _signal(code - 128) if isinstance(code, int) and code > 128 else None
    if killed in OUTSIDE_SIGNALS:
        return Transience(True, f"{proc} was {_killed(killed)}")
    for pattern, reason in TRANSIENT_TEXT:
        match = pattern.search(log_text)
        if match:
            name = _SIGNAL_NAME.search(match.group(0))
            how = f"was {_killed(signal.Signals[name.group(0)])}" if name else ""
            return Transience(True, reason.format(proc=proc, sig=how))
    what = f"exit code {code}" if isinstance(code, int) else "no exit code"
    return Transience(
        False, f"{proc} failed with {what}: an error in the run, not a transient fault"
    )


def _killed(sig: signal.Signals | None) -> str:
    """How a signal ended a process, as the reason says it: "killed (SIGKILL)"."""
    if sig is None:
        return "ended by a signal"
    return f"{OUTSIDE_SIGNALS.get(sig, 'ended')} ({sig.name})"


def _signal(number: int) -> signal.Signals | None:
    try:
        return signal.Signals(number)
    except ValueError:
        return None


def log_end(path: Path, size: int = 64 * 1024) -> str:
    """The last `size` bytes of a log as text ("" when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
