"""What `vft status` shows of one run: its record, processes and metrics summary, as text
lines for a terminal (and rich renderables for the live view, `vft status -f`)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.text import Text

from vft.cli.charts import sparkline
from vft.cli.run_common import when
from vft.core.runs.folders import FINISHED, Attempt
from vft.core.runs.metrics import Row, Summary, series, summary_lines, train_rows

#: how often the live view reads the run again (a remote folder: see REMOTE_REFRESH_S)
REFRESH_S = 2.0
#: a backend whose folder is remote is asked for metrics.jsonl at most this often
REMOTE_REFRESH_S = 30.0


@dataclass
class Report:
    """One attempt as last read: its status record (redacted), metrics and summary."""

    attempt: Attempt
    backend: str
    state: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)
    note: str | None = None

    @property
    def finished(self) -> bool:
        return self.state.get("status") in FINISHED

    def to_dict(self) -> dict[str, Any]:
        """The status record, with the summary under "metrics" (and a note if any)."""
        data = {**self.state, "metrics": self.summary.to_dict()}
        if self.note:
            data["metrics_note"] = self.note
        return data


def read_report(attempt: Attempt, impl: Any, rows: list[Row] | None = None) -> Report:
    """The attempt read now through its backend; `rows` reuses metrics fetched earlier."""
    from vft.cli.run_metrics import metrics_rows, run_summary
    from vft.core.secrets import Redactor, option_secret_names

    try:  # the names of the recipe's Modal secrets, whose values are secrets too
        names = option_secret_names(attempt.plan().backend_options)
    except ValueError:
        names = []
    redactor = Redactor.for_env(os.environ, names=names)
    state = redactor.obj(impl.status(attempt))
    note = None
    if rows is None:
        rows, note = metrics_rows(attempt, impl)
    summary = run_summary(attempt, state, rows)
    return Report(attempt, impl.name, state, rows, summary, note and redactor.text(note))


def header(report: Report) -> str:
    state, a = report.state, report.attempt
    line = f"{a.run_name} attempt-{a.number} [{report.backend}]: {state.get('status')}"
    if state.get("exit_code") is not None:
        line += f", exit code {state['exit_code']}"
    if state.get("started_at"):
        line += f", started {when(state['started_at'])}"
    return line


def text_lines(report: Report, *, spark: bool = True) -> list[str]:
    """The lines `vft status RUN` prints."""
    from vft.backends.restarts import restart_note

    out = [header(report)]
    restarted = restart_note(report.state)
    if restarted:
        out.append(f"  {restarted}")
    out += [f"  {line}" for line in summary_lines(report.summary)]
    rewards = [v for _, v in series(train_rows(report.rows), "reward")]
    if spark and len(rewards) >= 2:
        out.append(f"  reward {sparkline(rewards)} {rewards[0]:.3f} → {rewards[-1]:.3f}")
    if report.note:
        out.append(f"  {report.note}")
    failed = report.state.get("failed")
    if failed:
        out.append(f"  failed: {failed.get('process')}: {failed.get('reason')}")
    for name, info in (report.state.get("processes") or {}).items():
        code = info.get("exit_code")
        status = "running" if code is None else f"exit code {code}"
        out.append(f"  {name:<12} pid {info.get('pid')}  {status}  {info.get('log', '')}")
    out.append(f"  folder: {report.attempt.path}")
    return out


def renderable(reports: Sequence[Report], *, live: bool = True) -> Group:
    """The live view's frame: every run's lines, a blank line between runs; while `live`,
    a last line saying when it was read and how to leave."""
    parts: list[Text] = []
    for i, report in enumerate(reports):
        if i:
            parts.append(Text(""))
        lines = text_lines(report)
        parts.append(Text(lines[0], style="bold"))
        parts += [Text(line) for line in lines[1:]]
    if live:
        stamp = time.strftime("%H:%M:%S")
        parts.append(
            Text(f"updated {stamp}; Ctrl-C leaves this view (the runs go on)", style="dim")
        )
    return Group(*parts)


def follow(
    targets: Sequence[tuple[Attempt, Any]],
    *,
    refresh_s: float = REFRESH_S,
    console: Console | None = None,
) -> list[Report]:
    """Redraw every run's status until all have finished; Ctrl-C ends the view only.

    Returns the last reports read. A remote folder's metrics are fetched every
    REMOTE_REFRESH_S, its status every refresh.
    """
    import signal
    import threading

    from rich.live import Live

    from vft.cli.run_metrics import remote_folder

    if threading.current_thread() is threading.main_thread():
        # Ctrl-C is how this view ends, even where SIGINT came in ignored (a job started
        # in the background by a non-interactive shell): Python then never raises on it
        signal.signal(signal.SIGINT, signal.default_int_handler)
    fetched: dict[int, tuple[float, list[Row]]] = {}

    def read_all() -> list[Report]:
        reports = []
        for i, (attempt, impl) in enumerate(targets):
            rows = None
            if remote_folder(impl) and i in fetched:
                at, kept = fetched[i]
                rows = kept if time.monotonic() - at < REMOTE_REFRESH_S else None
            report = read_report(attempt, impl, rows)
            if rows is None:
                fetched[i] = (time.monotonic(), report.rows)
            reports.append(report)
        return reports

    reports = read_all()
    console = console or Console()
    try:
        with Live(renderable(reports), console=console, auto_refresh=False) as live:
            while not all(r.finished for r in reports):
                time.sleep(refresh_s)
                reports = read_all()
                live.update(renderable(reports), refresh=True)
            live.update(renderable(reports, live=False), refresh=True)
    except KeyboardInterrupt:
        console.print("[dim]vft: left the live view; the runs go on (vft stop RUN ends one)[/]")
    return reports
