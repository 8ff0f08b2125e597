"""A run's metrics rows and summary, wherever its folder is (`vft status`, `vft plot`,
`vft runs --sweep`).

A folder on this machine (or a disk it mounts: local, Slurm) is read in place. A backend
whose folder is remote (Modal: a Volume) overrides `Backend.get_outputs`; its
metrics.jsonl is fetched through that, the same route as `vft outputs get`, so it is as
fresh as the backend's last commit of the folder.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vft.core.errors import UserError
from vft.core.plugins.backend import Backend
from vft.core.runs.folders import FINISHED, Attempt
from vft.core.runs.metrics import METRICS_FILE, Row, Summary, read_rows, summarize


def remote_folder(impl: Backend) -> bool:
    """Whether the backend keeps the run's files elsewhere (it overrides get_outputs)."""
    return type(impl).get_outputs is not Backend.get_outputs


def metrics_rows(attempt: Attempt, impl: Backend) -> tuple[list[Row], str | None]:
    """(rows, a note when they could not be fetched); [] before the first step."""
    local = attempt.path / METRICS_FILE
    if local.exists() or not remote_folder(impl):
        return read_rows(local), None
    with tempfile.TemporaryDirectory(prefix="vft-metrics-") as tmp:
        try:  # its download progress bar is not for a status line
            with contextlib.redirect_stdout(io.StringIO()):
                impl.get_outputs(attempt, Path(tmp), prefix=METRICS_FILE)
        except UserError as exc:
            return [], f"metrics: {exc.line()}"
        return read_rows(Path(tmp) / METRICS_FILE), None


def many_metrics_rows(
    targets: Sequence[tuple[Attempt, Backend]], *, max_fetches: int = 8
) -> list[tuple[list[Row], str | None]]:
    """metrics_rows of each (attempt, backend), in order: a folder on this machine is read
    in place, remote ones are fetched at once (a sweep's points: one wait, not one each).
    A remote fetch that fails in any way is its note, never the end of the others."""
    out: list[tuple[list[Row], str | None]] = [([], None)] * len(targets)
    remote = []
    for i, (attempt, impl) in enumerate(targets):
        if remote_folder(impl) and not (attempt.path / METRICS_FILE).exists():
            remote.append(i)
        else:
            out[i] = metrics_rows(attempt, impl)
    if not remote:
        return out
    from concurrent.futures import ThreadPoolExecutor

    # one redirect around them all: contextlib.redirect_stdout swaps a process-wide stream
    with (
        contextlib.redirect_stdout(io.StringIO()),
        ThreadPoolExecutor(max_workers=min(max_fetches, len(remote))) as pool,
    ):
        futures = {i: pool.submit(metrics_rows, *targets[i]) for i in remote}
    for i, future in futures.items():
        error = future.exception()
        if error is None:
            out[i] = future.result()
        else:  # a service's own error class, a dropped connection
            reason = str(error).splitlines()[0][:200] if str(error) else ""
            out[i] = ([], f"metrics: {type(error).__name__}{': ' if reason else ''}{reason}")
    return out


def run_summary(
    attempt: Attempt, state: dict[str, Any], rows: list[Row], now: float | None = None
) -> Summary:
    """The summary of `rows` for the attempt whose status record is `state`: max_steps and
    the price come from its plan.json (no price, no $), times from the record."""
    try:
        plan = attempt.plan()
        max_steps: int | None = plan.trainer.training.max_steps
        price = plan.cost.usd_per_hour
    except UserError:  # an unreadable plan: the numbers without their totals
        max_steps, price = None, 0.0
    return summarize(
        rows,
        max_steps=max_steps,
        started_at=_float(state.get("started_at")),
        ended_at=_float(state.get("ended_at")),
        running=state.get("status") not in FINISHED,
        now=time.time() if now is None else now,
        usd_per_hour=float(price or 0.0),
    )


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
