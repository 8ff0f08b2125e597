"""Every wait of the supervisor is finite: a plan's timeouts are checked, not trusted.

The recipe refuses what is not a number of seconds, but a plan.json is a file anyone can
edit: `inf` would make a stop wait forever, `nan` would skip it. So the supervisor refuses
a value that is not a finite, non-negative number, and caps one that is merely huge.
"""

from __future__ import annotations

import math
from typing import Any

MAX_STOP_GRACE_S = 600.0
MAX_READY_TIMEOUT_S = 24 * 3600.0


def seconds(key: str, value: Any, cap: float) -> tuple[float, str | None]:
    """(`value` as seconds, capped at `cap`; a note when capped). ValueError when it is
    not a finite number >= 0."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise ValueError(f"{key} is {value!r}: not a finite number of seconds >= 0")
    if value > cap:
        return cap, f"{key} = {value:g} s is more than {cap:g} s: using {cap:g} s"
    return float(value), None
