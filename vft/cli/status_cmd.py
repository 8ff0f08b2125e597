"""`vft status`: one run's state, its processes and where its files are."""

from __future__ import annotations

import os

import click

from vft.cli.options import run_backend_option
from vft.cli.run_common import output_dir_option, resolve_run, run_argument, when


@click.command("status")
@run_argument
@output_dir_option
@run_backend_option
@click.option("--json", "as_json", is_flag=True, help="Print the full status record as JSON.")
def status_command(run: str, output_dir: str, backend: str | None, as_json: bool) -> None:
    """Show RUN's status: overall, and each process's pid and exit code."""
    import json

    from vft.core.secrets import Redactor, option_secret_names

    attempt, impl = resolve_run(run, output_dir, backend)
    try:  # the names of the recipe's Modal secrets, whose values are secrets too
        names = option_secret_names(attempt.plan().backend_options)
    except ValueError:
        names = []
    state = Redactor.for_env(os.environ, names=names).obj(impl.status(attempt))
    if as_json:
        click.echo(json.dumps(state, indent=2, sort_keys=True, default=str))
        return
    line = f"{attempt.run_name} attempt-{attempt.number} [{impl.name}]: {state.get('status')}"
    if state.get("exit_code") is not None:
        line += f", exit code {state['exit_code']}"
    if state.get("started_at"):
        line += f", started {when(state['started_at'])}"
    click.echo(line)
    failed = state.get("failed")
    if failed:
        click.echo(f"  failed: {failed.get('process')}: {failed.get('reason')}")
    for name, info in (state.get("processes") or {}).items():
        code = info.get("exit_code")
        status = "running" if code is None else f"exit code {code}"
        click.echo(f"  {name:<12} pid {info.get('pid')}  {status}  {info.get('log', '')}")
    click.echo(f"  folder: {attempt.path}")
