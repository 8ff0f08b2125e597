"""A failed process's own one-line verdict, found in its log.

vft's programs end a failure with one line `vft.<program>: error: <what> (at <where>)`
(the trainer names the environment's exception there). A launcher may print more after it
(torchrun's ChildFailedError block), so the supervisor looks back for that line and shows
it first, before the log's last lines.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

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
