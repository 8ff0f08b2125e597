"""`vft runs`: every run under the output dir with its latest attempt's status; with
`--sweep NAME`, a sweep's points with their values, status and reward."""

from __future__ import annotations

from typing import Any

import click

from vft.cli.run_common import exit_code_cell, output_dir_option, when
from vft.core.errors import UserError


@click.command("runs")
@output_dir_option
@click.option(
    "--sweep",
    "sweep",
    metavar="NAME",
    help="Only this sweep's points, with their values and final/best reward.",
)
def runs_command(output_dir: str, sweep: str | None) -> None:
    """List runs under the output dir with the status of each one's latest attempt."""
    from rich.console import Console
    from rich.table import Table

    from vft.core.plugins.registry import registry
    from vft.core.runs.folders import list_runs

    if sweep is not None:
        from vft.core.sweeps.record import read_sweep

        Console().print(sweep_table(read_sweep(sweep, output_dir), output_dir, live=True))
        return
    runs = list_runs(output_dir)
    if not runs:
        click.echo(f"no runs under {output_dir}/")
        return
    reg = registry()
    table = Table()
    for col in ("run", "status", "backend", "attempt", "started", "exit code"):
        table.add_column(col)
    for folder in runs:
        attempt = folder.latest()
        assert attempt is not None
        record, state = _row_state(reg, attempt)
        table.add_row(
            folder.name,
            str(state.get("status", "?")),
            str(record.get("backend", "?")),
            _attempt_cell(attempt.number, record),
            when(state.get("started_at") or record.get("created_at")),
            exit_code_cell(state.get("exit_code")),
        )
    Console().print(table)
    from vft.core.sweeps.record import list_sweeps

    sweeps = list_sweeps(output_dir)
    if sweeps:
        click.echo(f"sweeps: {', '.join(sweeps)} (vft runs --sweep NAME)")


def sweep_table(record: Any, output_dir: str, *, live: bool) -> Any:
    """A sweep's points as a rich table: values, status, steps, final and best reward.

    `live`: each point's status is asked of its backend now (as `vft status` does); else
    the sweep record's, as the sweep itself just wrote it."""
    from rich.markup import escape
    from rich.table import Table

    from vft.core.plugins.registry import registry
    from vft.core.runs.folders import Attempt, run_folder
    from vft.core.secrets import redact
    from vft.core.sweeps.names import column_headers
    from vft.core.sweeps.rewards import reward_cell, rewards

    reg = registry() if live else None
    keys = record.keys
    title = f"sweep {escape(record.name)} ({escape(record.status)}): {len(record.points)} points"
    table = Table(title=title)
    table.add_column("point", no_wrap=True)
    for key in keys:
        table.add_column(escape(column_headers(keys)[key]), overflow="fold")
    table.add_column("status", overflow="fold")
    for col in ("steps", "final reward", "best reward"):
        table.add_column(col, justify="right", no_wrap=True)
    for point in record.points:
        attempt = None
        if point.attempt is not None:
            attempt = Attempt(run_folder(output_dir, point.name).path / f"attempt-{point.attempt}")
        status = point.status
        if live and attempt is not None and attempt.path.is_dir():
            status = str(_row_state(reg, attempt)[1].get("status", "?"))
        if point.attempt is not None and point.attempt > 1:
            status += f" (attempt-{point.attempt})"
        if point.note and not live:
            status += f": {point.note}"
        got = rewards(attempt.path) if attempt is not None else None
        table.add_row(
            escape(point.name),
            *(escape(redact(_text(point.values.get(k)))) for k in keys),
            escape(redact(status)),
            str(got.steps) if got else "-",
            reward_cell(got.final) if got else "-",
            reward_cell(got.best) if got else "-",
        )
    return table


def _text(value: Any) -> str:
    from vft.core.sweeps.grid import toml_value

    return value if isinstance(value, str) else toml_value(value)


def _attempt_cell(number: int, record: dict[str, Any]) -> str:
    """`2 (restart 1 of 2)` for an attempt a restart started."""
    restart = record.get("restart")
    if isinstance(restart, dict):
        return f"{number} (restart {restart.get('number')} of {restart.get('allowed')})"
    return str(number)


def _row_state(reg: Any, attempt: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(record, state) of one run for `vft runs`: a broken run is a row, never the end."""
    from vft.core.runs.folders import UnreadableRecord

    try:
        record = attempt.record()
    except UnreadableRecord as exc:
        return {}, {"status": f"unreadable: {exc.reason}"}
    name = record.get("backend", "?")
    try:
        backend = reg.backend(name)
    except UserError:
        return record, {**record, "status": f"{record.get('status', '?')} ({name} not installed)"}
    try:
        return record, backend.status(attempt)
    except UnreadableRecord as exc:
        return record, {**record, "status": f"unreadable: {exc.reason}"}
    except Exception as exc:  # one unreachable backend must not hide the other runs
        return record, {**record, "status": f"unknown ({type(exc).__name__})"}
