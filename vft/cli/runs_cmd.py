"""`vft runs`: every run under the output dir with its latest attempt's status; with
`--sweep NAME`, a sweep's points with their values, status and reward."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import click

from vft.cli.run_common import exit_code_cell, output_dir_option, when
from vft.core.errors import UserError

#: the columns of `vft runs` after the run's name
RUN_COLUMNS = ("status", "backend", "attempt", "started", "exit code")
#: those a narrow terminal leaves out, least useful first
OPTIONAL_RUN_COLUMNS = ("backend", "started", "attempt")


@click.command("runs")
@output_dir_option
@click.option(
    "--sweep",
    "sweep",
    metavar="NAME",
    help="Only this sweep's points, with their values and final/best reward: its latest "
    "launch, or NAME/launch-N for an earlier one.",
)
def runs_command(output_dir: str, sweep: str | None) -> None:
    """List runs under the output dir with the status of each one's latest attempt."""
    from rich.console import Console

    from vft.core.plugins.registry import registry
    from vft.core.runs.folders import list_runs

    if sweep is not None:
        from vft.core.sweeps.record import pick_launch, read_launches, split_ref

        name, number = split_ref(sweep)
        launches = read_launches(name, output_dir)
        numbers = [r.launch for r in launches]
        shown = pick_launch(launches, number)
        Console().print(sweep_table(shown, output_dir, live=True, launches=numbers))
        return
    runs = list_runs(output_dir)
    if not runs:
        where = os.path.join(os.path.abspath(output_dir), "")  # the folder a user can check
        click.echo(f"no runs under {where} (elsewhere? cd there, or pass --output-dir DIR)")
        return
    reg = registry()
    rows = []
    for folder in runs:
        attempt = folder.latest()
        assert attempt is not None
        record, state = _row_state(reg, attempt)
        rows.append(
            [
                folder.name,
                str(state.get("status", "?")),
                str(record.get("backend", "?")),
                _attempt_cell(attempt.number, record),
                when(state.get("started_at") or record.get("created_at")),
                exit_code_cell(state.get("exit_code")),
            ]
        )
    console = Console()
    console.print(runs_table(rows, console.width), crop=False)
    from vft.core.sweeps.record import list_sweeps

    sweeps = list_sweeps(output_dir)
    if sweeps:
        click.echo(f"sweeps: {', '.join(sweeps)} (vft runs --sweep NAME)")


def runs_table(rows: Sequence[Sequence[str]], width: int) -> Any:
    """The runs as a table `width` columns wide: a run's name (what `vft status` and the
    others take) is never cut; on a narrow terminal the other columns wrap, then the
    backend, start time and attempt are left out, in that order."""
    from vft.cli.text import keyed_table

    return keyed_table("run", RUN_COLUMNS, rows, width, optional=OPTIONAL_RUN_COLUMNS)


def sweep_table(record: Any, output_dir: str, *, live: bool, launches: Sequence[int] = ()) -> Any:
    """A sweep's points as a rich table: values, status, steps, final and best reward.

    `live`: each point's status is asked of its backend now (as `vft status` does); else
    the sweep record's, as the sweep itself just wrote it. Rewards come through each
    point's backend (`vft status`'s route: a Modal point's off its Volume); a point whose
    metrics cannot be read shows UNREADABLE, and why under the table. `launches`: the
    numbers of the sweep's launches (the others than this one are named under it)."""
    from rich.markup import escape
    from rich.table import Table

    from vft.cli.run_metrics import many_metrics_rows
    from vft.core.plugins.registry import registry
    from vft.core.runs.folders import Attempt, run_folder
    from vft.core.secrets import redact
    from vft.core.sweeps.names import column_headers
    from vft.core.sweeps.rewards import UNREADABLE, reward_cell, rewards_of

    reg = registry()
    backends: dict[str, Any] = {}
    keys = record.keys
    others = [n for n in launches if n != record.launch]
    which = f", launch {record.launch} of {len(launches)}" if others else ""
    title = (
        f"sweep {escape(record.name)}{which} ({escape(record.status)}): {len(record.points)} points"
    )
    table = Table(title=title, caption_justify="left")
    table.add_column("point", no_wrap=True)
    for key in keys:
        table.add_column(escape(column_headers(keys)[key]), overflow="fold")
    table.add_column("status", overflow="fold")
    for col in ("steps", "final reward", "best reward"):
        table.add_column(col, justify="right", no_wrap=True)
    statuses: dict[str, str] = {}
    targets: dict[str, tuple[Any, Any]] = {}
    missing: dict[str, str] = {}  # why a point's metrics cannot be asked for at all
    for point in record.points:
        status = point.status
        if point.attempt is not None:
            attempt = Attempt(run_folder(output_dir, point.name).path / f"attempt-{point.attempt}")
            run, state = _row_state(reg, attempt) if live and attempt.path.is_dir() else ({}, {})
            if state:
                status = str(state.get("status", "?"))
            name = str(run.get("backend") or record.backend)
            if name not in backends:
                backends[name] = _backend(reg, name)
            if backends[name] is not None:
                targets[point.name] = (attempt, backends[name])
            else:
                missing[point.name] = f"metrics: the {name!r} backend is not installed here"
        if point.attempt is not None and point.attempt > 1:
            status += f" (attempt-{point.attempt})"
        if point.note and not live:
            status += f": {point.note}"
        statuses[point.name] = status
    fetched = dict(zip(targets, many_metrics_rows(list(targets.values())), strict=True))
    notes = []
    for point in record.points:
        cells = ["-", "-", "-"]
        if point.name in fetched or point.name in missing:
            rows, why = fetched.get(point.name) or ([], missing[point.name])
            if why:
                cells = [UNREADABLE] * 3
                notes.append(f"{UNREADABLE} {point.name}: {why}")
            else:
                got = rewards_of(rows)
                cells = [str(got.steps), reward_cell(got.final), reward_cell(got.best)]
        table.add_row(
            escape(point.name),
            *(escape(redact(_text(point.values.get(k)))) for k in keys),
            escape(redact(statuses[point.name])),
            *cells,
        )
    if others:
        named = ", ".join(f"{record.name}/launch-{n}" for n in others)
        notes.append(f"other launches: {named} (vft runs --sweep NAME/launch-N)")
    if notes:
        table.caption = escape(redact("\n".join(notes)))
    return table


def _backend(reg: Any, name: str) -> Any:
    """The backend that reads a point's metrics; None where it is not installed (its
    status says so)."""
    try:
        return reg.backend(name)
    except UserError:
        return None


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
