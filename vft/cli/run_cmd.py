"""`vft run`, `vft logs`, `vft stop`.

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
from vft.cli.run_common import note, output_dir_option, resolve_run, run_argument


@click.command("run")
@click.argument("recipe", required=False, type=click.Path(dir_okay=False), metavar="[RECIPE]")
@backend_option
@set_option
@click.option("--detach", "-d", is_flag=True, help="Return at once; follow with `vft logs RUN -f`.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Write the run folder and show the plan; start nothing. Exits 2 where a real run "
    "would be refused here (the refusal is shown).",
)
@click.option("--force", is_flag=True, help="Launch although the preflight found a problem.")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Show every process's whole output live (libraries' warnings, progress bars); "
    "by default the console shows vft's lines, tracebacks and errors, the logs keep all.",
)
def run_command(
    recipe: str,
    backend: str,
    overrides: tuple[str, ...],
    detach: bool,
    dry_run: bool,
    force: bool,
    verbose: bool,
) -> None:
    """Run RECIPE on a backend: preflight, a new attempt folder, then the processes.

    Without RECIPE, runs the CPU smoke recipe (examples/recipes/smoke.toml): a real GRPO
    run of a tiny model built offline. Exits with the run's exit code (the failing
    process's code, 130 after Ctrl-C).
    """
    from vft.cli.plan_cmd import show_plan
    from vft.core.node.logrelay import VERBOSE_VAR
    from vft.core.resources import smoke_recipe_file
    from vft.launch import launch

    if verbose:  # read by the supervisor's console merge, in this process or a child
        os.environ[VERBOSE_VAR] = "1"

    base_dir = None
    if recipe is None:
        recipe = str(smoke_recipe_file())
        base_dir = Path.cwd()  # the shipped recipe names no path; its processes run here
        note(f"no RECIPE given: running the CPU smoke recipe {recipe}")

    done = launch(
        recipe,
        overrides,
        backend,
        detach=detach,
        dry_run=dry_run,
        force=force,
        note=note,
        show=lambda plan, impl: show_plan(plan, impl.describe(plan)),
        base_dir=base_dir,
    )
    plan, attempt, code = done.plan, done.attempt, done.exit_code
    if dry_run:
        sys.exit(code)  # 0, or the refusal's code where a real run would stop
    out = plan.run.output_dir
    where = "" if out == "outputs" else f" --output-dir {out}"
    if detach:
        click.echo(plan.name)
        note(f"follow: vft logs {plan.name}{where} -f    stop: vft stop {plan.name}{where}")
    else:
        verdict = "succeeded" if code == 0 else f"failed with exit code {code}"
        if code == 0 and _stopped_at_budget(attempt):
            verdict = "stopped at its budget with a checkpoint (continue it with --set "
            verdict += "trainer.resume_from_checkpoint=latest)"
        elif code != 0 and _stopped(attempt):  # Ctrl-C, `vft stop`: as `vft status` says
            verdict = f"stopped (exit code {code})"
        note(f"run {plan.name} attempt-{attempt.number} {verdict}; files: {attempt.path}")
        note(f"curves: vft plot {plan.name}{where}")
    sys.exit(code)  # not ctx.exit: click would return the code instead of exiting with it


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
    attempt, impl = resolve_run(run, output_dir, backend)
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

    attempt, impl = resolve_run(run, output_dir, backend)
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


def _stopped(attempt: Any) -> bool:
    """Whether the attempt's record says it was stopped (not failed)."""
    from vft.core.runs.folders import RunStatus, UnreadableRecord

    try:
        return attempt.record().get("status") == RunStatus.STOPPED
    except UnreadableRecord:
        return False


def _stopped_at_budget(attempt: Any) -> bool:
    """Whether the run ended itself at resources.max_usd / max_hours (its exit code is 0)."""
    from vft.core.runs.folders import UnreadableRecord

    try:
        return attempt.record().get("stop_reason") == "budget"
    except UnreadableRecord:
        return False
