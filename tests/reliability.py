"""The fault and fuzz suites' tally, printed by pytest as one line at the end of a run.

Each case of tests/faults/ and tests/fuzz/ counts itself here with what it found; the
line (`reliability: N cases tried, 0 orphans left, 0 records lost, 0 secrets seen`) is
the figure the README's "Reliability" section quotes. A case that finds an orphan, a
lost record or a secret also fails on its own; the line is the summary, not the check.
"""

from __future__ import annotations

from collections import Counter

TALLY: Counter[str] = Counter()
KINDS = ("cases", "orphans", "records_lost", "secrets_seen")


def case(*, orphans: int = 0, records_lost: int = 0, secrets_seen: int = 0, n: int = 1) -> None:
    """Count `n` cases tried and what they found."""
    TALLY["cases"] += n
    TALLY["orphans"] += orphans
    TALLY["records_lost"] += records_lost
    TALLY["secrets_seen"] += secrets_seen


def summary() -> str | None:
    if not TALLY["cases"]:
        return None
    by_kind = dict(TALLY)
    return (
        f"reliability: {by_kind.get('cases', 0)} cases tried, "
        f"{by_kind.get('orphans', 0)} orphans left, "
        f"{by_kind.get('records_lost', 0)} records lost, "
        f"{by_kind.get('secrets_seen', 0)} secrets seen"
    )
