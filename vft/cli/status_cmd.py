"""`vft status`: a run's state, processes, progress (step, reward, loss, KL, ETA, cost)
and where its files are; `-f` keeps it live until the run ends."""

from __future__ import annotations

from typing import Any

import click

from vft.cli.options import run_backend_option
from vft.cli.run_common import output_dir_option, resolve_run


@click.command("status")
@click.argument("runs", nargs=-1, metavar="[RUN]...")
@output_dir_option
@run_backend_option
@click.option("--json", "as_json", is_flag=True, help="Print the full status record as JSON.")
@click.option(
    "-f",
    "--follow",
    is_flag=True,
    help="Keep the view live until the run(s) end; Ctrl-C leaves the view, not the run.",
)
@click.option(
    "-n",
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes of the live view (-f).",
)
def status_command(
    runs: tuple[str, ...],
    output_dir: str,
    backend: str | None,
    as_json: bool,
    follow: bool,
    interval: float,
) -> None:
    """Show RUN's status: overall, its progress and cost, each process's pid and exit code.

    \b
    Without RUN: every run under --output-dir that is still running.
    --json: the record of one RUN (a list for several, or none named); its "metrics"
    holds the progress: step, max_steps, reward and its components, loss, kl,
    tokens_per_s, elapsed_s, eta_s, and with a price usd_so_far, usd_projected.
    """
    import json

    from vft.core.errors import UserError

    if follow and as_json:
        raise UserError("--json and -f: give one (--json prints the record once)")
    targets = [resolve_run(run, output_dir, backend) for run in runs]
    if not runs:
        targets = running(output_dir, backend)
    if not targets:
        click.echo(f"no running run under {output_dir}/ (vft runs lists them all)")
        return
    if follow:
        from vft.cli.status_view import follow as follow_view

        follow_view(targets, refresh_s=interval)
        return
    from vft.cli.status_view import read_report, text_lines

    reports = [read_report(attempt, impl) for attempt, impl in targets]
    if as_json:
        data: Any = [r.to_dict() for r in reports]
        if len(runs) == 1:
            data = data[0]
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        return
    for i, report in enumerate(reports):
        if i:
            click.echo("")
        for line in text_lines(report):
            click.echo(line)


def running(output_dir: str, backend: str | None = None) -> list[tuple[Any, Any]]:
    """(attempt, backend) of each run whose latest attempt is launching or running (on
    `backend` if given), as its backend sees it now; runs it cannot read are left out."""
    from vft.core.errors import UserError
    from vft.core.plugins.registry import registry
    from vft.core.runs.folders import FINISHED, RunStatus, list_runs

    found = []
    for folder in list_runs(output_dir):
        attempt = folder.latest()
        if attempt is None:
            continue
        try:
            record = attempt.record()
            if record.get("status") in FINISHED:
                continue
            name = record.get("backend") or "local"
            if backend is not None and name != backend:
                continue
            impl = registry().backend(name)
            status = impl.status(attempt).get("status")
        except UserError:  # unreadable, a backend not installed here: `vft runs` shows it
            continue
        if status not in FINISHED and status != RunStatus.CREATED:
            found.append((attempt, impl))
    return found
