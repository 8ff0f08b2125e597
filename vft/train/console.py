"""The trainer's lines for the console: phases, progress and verdict, all `vft.train: ...`.

The supervisor's quiet console (vft/core/node/logrelay.py) shows a process's lines that
start with `vft.<program>: ` and leaves the libraries' output to the log file, so every
line meant for the user goes through here: `say` for a phase ("loading the model..."),
`marked` around code that prints for the user (the metrics callback's progress line).
Only the main process speaks: the others would repeat it.

`Phases` times the start-up (imports, model, DeepSpeed, trainer) and says it in one line
before the first step: `ready to train after 31.2 s (imports 17.0 s, ...)`, which
bench/startup.py reads back from the log.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import time
from collections.abc import Iterator
from typing import TextIO

PREFIX = "vft.train: "
READY = "ready to train after"


def is_main() -> bool:
    """The main process of the launch (before accelerate's state exists: its env)."""
    return os.environ.get("RANK", "0") == "0"


def say(text: str) -> None:
    """One line for the console (and the log), from the main process only."""
    if is_main():
        print(PREFIX + text, flush=True)


class _Marked(io.TextIOBase):
    """A text stream that starts every line written to it with `PREFIX`."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.at_line_start = True

    def write(self, text: str) -> int:
        parts = text.split("\n")
        marked = []
        for i, part in enumerate(parts):
            if part and self.at_line_start and not part.startswith(PREFIX):
                part = PREFIX + part
            marked.append(part)
            self.at_line_start = i < len(parts) - 1 or (self.at_line_start and not part)
        self.out.write("\n".join(marked))
        return len(text)

    def flush(self) -> None:
        self.out.flush()


@contextlib.contextmanager
def marked() -> Iterator[None]:
    """Within: what is printed to stdout is a console line (`vft.train: ` in front)."""
    stream = _Marked(sys.stdout)
    with contextlib.redirect_stdout(stream):
        yield
    stream.flush()


class Phases:
    """Start-up phases: `start(name)` ends the previous one; `ready()` says them all."""

    def __init__(self, started: float | None = None) -> None:
        self.started = time.monotonic() if started is None else started
        self.done: list[tuple[str, float]] = []
        self._current: tuple[str, float] | None = None

    def start(self, name: str, line: str | None = None) -> None:
        """Begin phase `name`, saying `line` (a phase line for the console) if given."""
        self._end()
        self._current = (name, time.monotonic())
        if line:
            say(line)

    def _end(self) -> None:
        if self._current is not None:
            name, began = self._current
            self.done.append((name, time.monotonic() - began))
            self._current = None

    def ready(self) -> str:
        """End the start-up: the one line that says how long it took, and in what."""
        self._end()
        total = time.monotonic() - self.started
        parts = ", ".join(f"{name} {took:.1f} s" for name, took in self.done)
        line = f"{READY} {total:.1f} s ({parts})"
        say(line)
        return line


def parse_ready(line: str) -> dict[str, float] | None:
    """`ready to train after T s (a 1.0 s, b 2.0 s)` -> {"total": T, "a": 1.0, "b": 2.0}."""
    match = _READY_LINE.search(line)
    if match is None:
        return None
    phases = {"total": float(match.group(1))}
    phases |= {name: float(took) for name, took in _PHASE.findall(match.group(2))}
    return phases


_READY_LINE = re.compile(re.escape(READY) + r" ([\d.]+) s \((.*)\)")
_PHASE = re.compile(r"(\w+) ([\d.]+) s")
