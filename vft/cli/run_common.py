"""What every command on an existing run shares: finding it, its backend, time and code cells."""

from __future__ import annotations

import time
from typing import Any

import click

from vft.core.errors import UserError

output_dir_option = click.option(
    "--output-dir",
    default="outputs",
    show_default=True,
    envvar="VFT_OUTPUT_DIR",
    help="Where run folders live (the recipe's run.output_dir).",
)
run_argument = click.argument("run", metavar="RUN")


def resolve_run(run: str, output_dir: str, backend: str | None = None) -> tuple[Any, Any]:
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


def note(text: str) -> None:
    from vft.core.secrets import redact

    click.echo(f"vft: {redact(text)}", err=True)


def when(ts: Any) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts)))


def exit_code_cell(code: Any) -> str:
    return "-" if code is None else str(code)
