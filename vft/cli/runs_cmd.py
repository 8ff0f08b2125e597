"""`vft runs`: every run under the output dir with its latest attempt's status."""

from __future__ import annotations

from typing import Any

import click

from vft.cli.run_common import exit_code_cell, output_dir_option, when
from vft.core.errors import UserError


@click.command("runs")
@output_dir_option
def runs_command(output_dir: str) -> None:
    """List runs under the output dir with the status of each one's latest attempt."""
    from rich.console import Console
    from rich.table import Table

    from vft.core.plugins.registry import registry
    from vft.core.runs.folders import list_runs

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
            str(attempt.number),
            when(state.get("started_at") or record.get("created_at")),
            exit_code_cell(state.get("exit_code")),
        )
    Console().print(table)


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
