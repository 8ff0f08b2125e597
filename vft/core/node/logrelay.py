"""Child output: every byte to the process's log file, a bounded live merge to the console.

A child must never block on vft. Each child writes into a pipe (enlarged to 1 MiB) that a
reader thread drains in large chunks straight into `logs/<name>.log`; the console merge is
fed from a bounded queue, rate-limited to what a person can read, and *drops* what a slow
terminal cannot keep up with (saying how much, and where to find it) instead of pushing
back on the child. A log that cannot be written (disk full) is given up, said once, and
its pipe drained all the same.

The console is quiet by default: it shows vft's own lines (`vft: ...`, `vft.train: ...`:
the trainer's phases, one progress line per step, its verdict), Python tracebacks in full
and error lines (`ERROR` records, `SomeError: ...`, `error:`), so a failure is never
hidden; the libraries' chatter (warnings, progress bars, banners) goes
to the log files only, and the first line hidden from a process says where it went.
`VFT_VERBOSE=1` (`vft run -v`) shows everything live. vft's programs mark their lines by
the `vft.<program>: ` prefix they print anyway (the supervisor's verdict reads the same),
so the filter needs no knowledge of any library's format and survives any launcher in
between (accelerate, torchrun): a prefix travels through every pipe, a second file
descriptor would not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from vft.core.secrets import Redactor

PIPE_SIZE = 1 << 20
READ_SIZE = 1 << 20
CONSOLE_BACKLOG = 4 << 20  # bytes waiting for the terminal before the merge starts dropping
# nobody reads more than this live; beyond it the merge samples (the log files keep all)
CONSOLE_RATE = 2 << 20  # bytes per second
CONSOLE_BURST = 8 << 20
MAX_PARTIAL = 64 << 10
BATCH = 256 << 10
BATCH_WAIT_S = 0.002  # a line longer than this is written out in pieces
COLOURS = {"inference": "36", "trainer": "35", "vft": "1;33"}
OTHER_COLOURS = ("32", "34", "96", "95", "92", "94")
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

VERBOSE_VAR = "VFT_VERBOSE"  # set by `vft run -v`; read wherever the supervisor runs
#: a line of vft's own programs: `vft: ...`, `vft.train: ...` (not `vft_smoke: ...`)
OWN_LINE = re.compile(rb"vft(?:\.[a-z_]+)*: ")
TRACEBACK = re.compile(rb"[ |+]*(?:Traceback \(most recent call last\)|Exception Group Traceback)")
CHAINED = (b"The above exception was the direct cause", b"During handling of the above exception")
#: an error line: a log record at error level in the usual layouts (`ERROR 12-04 ...`,
#: `[ERROR]`, `ERROR:root:...`, `[ERROR|trainer.py:12]`), an exception's line that is no
#: traceback's (`worker: RuntimeError: ...` as a launcher relays it), a program's or a
#: compiler's `error:` / `fatal error:`
ERROR_LINE = re.compile(
    rb"^.{0,80}?(?:(?<![\w.])(?:ERROR|CRITICAL|FATAL)(?:[]:|]|\s)"
    rb"|\b[A-Z]\w*(?:Error|Exception): "
    rb"|(?<![\w-])(?:fatal )?error: )"
)
#: none of these in a chunk: nothing in it is shown (a fast path for floods of chatter)
SHOWN_HINTS = (b"vft", b"Traceback", b"rror", b"RROR", b"CRITICAL", b"FATAL", b"Exception")
ANSI = re.compile(rb"\x1b\[[0-9;]*m")  # colours around a level name (`ERROR` in red)


def verbose_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the console shows every process's whole output (`VFT_VERBOSE`)."""
    value = (os.environ if environ is None else environ).get(VERBOSE_VAR, "")
    return value.strip().lower() not in ("", "0", "false", "no", "off")


class QuietFilter:
    """Which lines of one process the quiet console shows (see the module's docstring).

    A traceback is followed from its `Traceback (most recent call last):` through its
    indented frames to the exception line, chained ones included, so a failure is never
    cut short on the console.
    """

    def __init__(self) -> None:
        self.in_frames = False  # inside a traceback's indented frames
        self.after = False  # just past a traceback's exception line

    def keep(self, line: bytes) -> bool:
        text = line.rsplit(b"\r", 1)[-1].rstrip(b"\r\n")  # a progress bar: its last state
        if b"\x1b" in text:
            text = ANSI.sub(b"", text)
        if self.in_frames:
            if not text or text[:1] in (b" ", b"\t") or text.startswith((b"|", b"+")):
                return True
            self.in_frames, self.after = False, True
            return True  # the exception line (`ValueError: ...`)
        if self.after:
            if not text.strip():
                return False
            if text.startswith(CHAINED) or text[:1] in (b" ", b"\t"):
                return True  # a chained traceback's header, a message's further lines
            self.after = False
        if TRACEBACK.match(text):
            self.in_frames = True
            return True
        return bool(OWN_LINE.match(text) or ERROR_LINE.match(text))

    def idle(self) -> bool:
        """Not inside a traceback: a chunk without a `SHOWN_HINTS` word shows nothing."""
        return not (self.in_frames or self.after)


def make_pipe() -> tuple[int, int]:
    """(read end, write end) of a pipe as large as the kernel allows us (1 MiB by default)."""
    r, w = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(w, _F_SETPIPE_SZ, PIPE_SIZE)
    return r, w


class ConsoleMerge:
    """The live, prefixed, colour-coded merge of every process's output on one stream.

    `verbose` None reads `VFT_VERBOSE`; quiet, each process's output is filtered by a
    `QuietFilter` before it reaches the queue (so chatter costs no console budget).
    """

    def __init__(
        self,
        out: BinaryIO | None = None,
        *,
        names: list[str] | None = None,
        verbose: bool | None = None,
    ) -> None:
        stdout = getattr(sys.stdout, "buffer", None)  # None under pythonw or a closed stdout
        self.out = out if out is not None else stdout or open(os.devnull, "wb")  # noqa: SIM115
        tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.colour = tty and "NO_COLOR" not in os.environ
        self.width = max([len(n) for n in names or []] + [3]) + 2
        self._queue: deque[tuple[str, bytes]] = deque()
        self._pending = 0
        self._dropped: dict[str, int] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._prefixes: dict[str, bytes] = {}
        self._tokens = float(CONSOLE_BURST)
        self._refilled = time.monotonic()
        self.verbose = verbose_from_env() if verbose is None else verbose
        self._filters: dict[str, QuietFilter] = {}
        self._hidden: set[str] = set()  # processes whose output was hidden (told once)
        self._thread = threading.Thread(target=self._drain, name="vft-console", daemon=True)
        self._thread.start()

    def offer(self, name: str, chunk: bytes) -> None:
        """Queue a child's chunk for the terminal, or count it as dropped; never waits."""
        if not self.verbose:
            chunk = self._quiet(name, chunk)
            if not chunk:
                return
        with self._cond:
            now = time.monotonic()
            self._tokens = min(CONSOLE_BURST, self._tokens + (now - self._refilled) * CONSOLE_RATE)
            self._refilled = now
            if self._pending + len(chunk) > CONSOLE_BACKLOG or len(chunk) > self._tokens:
                self._dropped[name] = self._dropped.get(name, 0) + len(chunk)
                return
            self._tokens -= len(chunk)
            self._pending += len(chunk)
            self._queue.append((name, chunk))
            self._cond.notify()

    def _quiet(self, name: str, chunk: bytes) -> bytes:
        """What of `chunk` the quiet console shows; the first hidden line of a process is
        replaced by one note saying where its output is (called by one relay per name)."""
        flt = self._filters.get(name)
        if flt is None:
            flt = self._filters[name] = QuietFilter()
        kept: list[bytes] = []
        hid = False
        if flt.idle() and not any(hint in chunk for hint in SHOWN_HINTS):
            hid = not chunk.isspace()
        else:
            for line in chunk.splitlines(keepends=True):
                if flt.keep(line):
                    kept.append(line)
                elif line.strip():
                    hid = True
        if hid and name not in self._hidden:
            self._hidden.add(name)
            note = f"(its other output is in logs/{name}.log; `vft run -v` shows it here)\n"
            kept.insert(0, note.encode())
        return b"".join(kept)

    def say(self, text: str) -> None:
        """vft's own messages: always shown, in order with the children's output."""
        with self._cond:
            self._queue.append(("vft", (text.rstrip("\n") + "\n").encode()))
            self._cond.notify()

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    def _prefix(self, name: str) -> bytes:
        if name not in self._prefixes:
            label = f"[{name}]".ljust(self.width)
            if self.colour:
                colour = (
                    COLOURS.get(name.split("-")[0])
                    or OTHER_COLOURS[len(self._prefixes) % len(OTHER_COLOURS)]
                )
                label = f"\x1b[{colour}m{label}\x1b[0m"
            self._prefixes[name] = label.encode()
        return self._prefixes[name]

    def _drain(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                name, chunk = self._queue.popleft()
                if name != "vft":
                    self._pending -= len(chunk)
                dropped: dict[str, int] = {}
                if not self._pending and self._dropped:  # caught up: say what was skipped
                    dropped, self._dropped = self._dropped, {}
            self._write(name, chunk)
            for who, count in dropped.items():
                note = f"... {count} bytes too fast to show here; all in logs/{who}.log\n"
                self._write(who, note.encode())

    def _write(self, name: str, chunk: bytes) -> None:
        if b"\r" in chunk:  # progress bars: show each line as a terminal would leave it
            chunk = b"\n".join(line.rsplit(b"\r", 1)[-1] for line in chunk.split(b"\n"))
        prefix = self._prefix(name) + b" "
        body = chunk[:-1] if chunk.endswith(b"\n") else chunk
        try:
            self.out.write(prefix + body.replace(b"\n", b"\n" + prefix) + b"\n")
            self.out.flush()
        except (OSError, ValueError):  # the terminal went away: the log files still have it all
            pass


def relay(
    name: str,
    fd: int,
    log_path: Path,
    redactor: Redactor,
    console: ConsoleMerge | None,
    on_error: Callable[[str], None] | None = None,
) -> threading.Thread:
    """Start a thread that drains `fd` into `log_path` (and the console) until EOF.

    It never stops draining: when the log cannot be written (disk full, file too large,
    an I/O error), the rest of the output is discarded, `on_error` hears one line, and
    the child runs on instead of blocking on a full pipe.
    """
    sink = LogSink(log_path, on_error)

    def run() -> None:
        carry = b""
        try:
            while True:
                try:
                    data = os.read(fd, READ_SIZE)
                except OSError:
                    data = b""
                if not data:
                    break
                if len(data) < BATCH:
                    # let a fast writer fill the pipe a little: one wake-up per few hundred
                    # KiB instead of one per write saves the child most of the pipe's cost
                    time.sleep(BATCH_WAIT_S)
                data = carry + data if carry else data
                # cut at a line end so a secret is never split across two redactions
                cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
                if cut == 0 and len(data) < MAX_PARTIAL:
                    carry = data
                    continue
                if cut == 0:
                    cut = len(data)
                chunk, carry = data[:cut], data[cut:]
                _emit(name, redactor.bytes(chunk), sink, console)
            if carry:
                _emit(name, redactor.bytes(carry), sink, console)
        finally:
            sink.close()
            with contextlib.suppress(OSError):
                os.close(fd)

    thread = threading.Thread(target=run, name=f"vft-relay-{name}", daemon=True)
    thread.start()
    return thread


class LogSink:
    """A log file that never raises: the first failure is reported once, the rest dropped."""

    def __init__(self, path: Path, on_error: Callable[[str], None] | None) -> None:
        self.path, self.on_error = path, on_error
        self.file: BinaryIO | None = None
        self.failed = False
        try:
            self.file = open(path, "ab", buffering=0)  # noqa: SIM115
        except OSError as exc:
            self._fail(exc)

    def write(self, data: bytes) -> None:
        if self.file is None:
            return
        view = memoryview(data)
        try:
            while view:  # an unbuffered write may take only part (the disk filling up)
                view = view[self.file.write(view) or 0 :]
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None

    def _fail(self, exc: OSError) -> None:
        self.close()
        if self.failed:
            return
        self.failed = True
        if self.on_error is not None:
            with contextlib.suppress(Exception):
                self.on_error(write_error(self.path, exc))


def write_error(path: Path, exc: OSError) -> str:
    """The one line saying a log stopped being written, and that the run goes on."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"logs: disk full at {path} — run continues"
    if exc.errno == errno.EFBIG:
        return f"logs: {path} reached the largest file allowed here — run continues"
    return f"logs: cannot write {path} ({exc.strerror or exc}) — run continues"


def _emit(name: str, chunk: bytes, sink: LogSink, console: ConsoleMerge | None) -> None:
    sink.write(chunk)
    if console is not None:
        console.offer(name, chunk)


def tail_lines(path: Path, n: int = 20, max_bytes: int = 256 << 10) -> list[str]:
    """The last `n` lines of a log file (progress-bar carriage returns resolved)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return []
    lines = [line.rsplit(b"\r", 1)[-1] for line in data.split(b"\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.decode(errors="replace") for line in lines[-n:]]
