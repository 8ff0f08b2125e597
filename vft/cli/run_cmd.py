"""`vft run`, `vft runs`, `vft status`, `vft logs`, `vft stop`.

Every command after `run` finds the run folder and dispatches through the backend recorded
in its run.json, so Modal and cluster runs answer the same commands as local ones.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from vft.cli.options import backend_option, run_backend_option, set_option
from vft.core.errors import UserError

output_dir_option = click.option(
    "--output-dir",
    default="outputs",
    show_default=True,
    envvar="VFT_OUTPUT_DIR",
    help="Where run folders live (the recipe's run.output_dir).",
)
run_argument = click.argument("run", metavar="RUN")


@click.command("run")
@click.argument("recipe", required=False, type=click.Path(dir_okay=False), metavar="[RECIPE]")
@backend_option
@set_option
@click.option("--detach", "-d", is_flag=True, help="Return at once; follow with `vft logs RUN -f`.")
@click.option(
    "--dry-run", is_flag=True, help="Write the run folder and show the plan; start nothing."
)
@click.option("--force", is_flag=True, help="Launch although the preflight found a problem.")
def run_command(
    recipe: str,
    backend: str,
    overrides: tuple[str, ...],
    detach: bool,
    dry_run: bool,
    force: bool,
) -> None:
    """Run RECIPE on a backend: preflight, a new attempt folder, then the processes.

    Without RECIPE, runs the CPU smoke recipe (examples/recipes/smoke.toml): a real GRPO
    run of a tiny model built offline. Exits with the run's exit code (the failing
    process's code, 130 after Ctrl-C).
    """
    from vft.cli.plan_cmd import show_plan
    from vft.core.resources import smoke_recipe_file
    from vft.launch import launch

    base_dir = None
    if recipe is None:
        recipe = str(smoke_recipe_file())
        base_dir = Path.cwd()  # the shipped recipe names no path; its processes run here
        _note(f"no RECIPE given: running the CPU smoke recipe {recipe}")

    done = launch(
        recipe,
        overrides,
        backend,
        detach=detach,
        dry_run=dry_run,
        force=force,
        note=_note,
        show=lambda plan, impl: show_plan(plan, impl.describe(plan)),
        base_dir=base_dir,
    )
    plan, attempt, code = done.plan, done.attempt, done.exit_code
    if dry_run:
        return
    out = plan.run.output_dir
    where = "" if out == "outputs" else f" --output-dir {out}"
    if detach:
        click.echo(plan.name)
        _note(f"follow: vft logs {plan.name}{where} -f    stop: vft stop {plan.name}{where}")
    else:
        verdict = "succeeded" if code == 0 else f"failed with exit code {code}"
        _note(f"run {plan.name} attempt-{attempt.number} {verdict}; files: {attempt.path}")
    sys.exit(code)  # not ctx.exit: click would return the code instead of exiting with it


def _note(text: str) -> None:
    from vft.core.secrets import redact

    click.echo(f"vft: {redact(text)}", err=True)


def _resolve(run: str, output_dir: str, backend: str | None = None) -> tuple[Any, Any]:
    """(attempt, backend instance) for a run reference, through its recorded backend.

    An unreadable run.json is one line (UnreadableRecord); `backend` (-b) must agree with
    the record, so a run is never read through a backend it did not run on.
    """
    from vft.core.plugins.registry import registry
    from vft.core.runs.folders import find_attempt

    attempt = find_attempt(run, output_dir)
    name = attempt.record().get("backend") or "local"
    if backend is not None and backend != name:
        registry().backend(backend)  # an unknown name: the usual line listing the known ones
        raise UserError(
            f"--backend: {attempt.run_name} attempt-{attempt.number} ran on {name!r}, "
            f"not {backend!r} (leave out -b to use the backend its run.json records)"
        )
    return attempt, registry().backend(name)


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
            _when(state.get("started_at") or record.get("created_at")),
            _code(state.get("exit_code")),
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


@click.command("status")
@run_argument
@output_dir_option
@run_backend_option
@click.option("--json", "as_json", is_flag=True, help="Print the full status record as JSON.")
def status_command(run: str, output_dir: str, backend: str | None, as_json: bool) -> None:
    """Show RUN's status: overall, and each process's pid and exit code."""
    import json

    from vft.core.secrets import Redactor, option_secret_names

    attempt, impl = _resolve(run, output_dir, backend)
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
        line += f", started {_when(state['started_at'])}"
    click.echo(line)
    failed = state.get("failed")
    if failed:
        click.echo(f"  failed: {failed.get('process')}: {failed.get('reason')}")
    for name, info in (state.get("processes") or {}).items():
        code = info.get("exit_code")
        status = "running" if code is None else f"exit code {code}"
        click.echo(f"  {name:<12} pid {info.get('pid')}  {status}  {info.get('log', '')}")
    click.echo(f"  folder: {attempt.path}")


@click.command("logs")
@run_argument
@output_dir_option
@click.option(
    "--follow", "-f", is_flag=True, help="Keep printing as the run writes, until it ends."
)
@click.option("--process", "-p", metavar="NAME", help="Only this process's log (e.g. trainer).")
@run_backend_option
def logs_command(
    run: str, output_dir: str, follow: bool, process: str | None, backend: str | None
) -> None:
    """Print RUN's logs: every process prefixed with its name, or one with --process."""
    attempt, impl = _resolve(run, output_dir, backend)
    try:
        for line in impl.logs(attempt, follow=follow, process=process):
            click.echo(line)
    except KeyboardInterrupt:  # Ctrl-C ends following, not the run
        pass


@click.command("stop")
@run_argument
@output_dir_option
@run_backend_option
def stop_command(run: str, output_dir: str, backend: str | None) -> None:
    """Stop RUN in order (SIGTERM to every process tree, SIGKILL after the grace period)."""
    from vft.core.runs.folders import FINISHED

    attempt, impl = _resolve(run, output_dir, backend)
    before = impl.status(attempt).get("status")
    if before in FINISHED:
        click.echo(f"{attempt.run_name} attempt-{attempt.number} is not running ({before})")
        return
    started = time.monotonic()
    impl.stop(attempt)
    after = impl.status(attempt)
    click.echo(
        f"{attempt.run_name} attempt-{attempt.number}: {after.get('status')} "
        f"in {time.monotonic() - started:.1f} s"
    )


def _when(ts: Any) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts)))


def _code(code: Any) -> str:
    return "-" if code is None else str(code)
