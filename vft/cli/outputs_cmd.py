"""`vft outputs ls RUN` and `vft outputs get RUN DEST`: through the run's own backend."""

from __future__ import annotations

from pathlib import Path

import click

from vft.cli.options import run_backend_option
from vft.cli.run_common import output_dir_option, resolve_run


@click.group("outputs")
def outputs_group() -> None:
    """List or download the files a run wrote."""


@outputs_group.command("ls")
@click.argument("run", metavar="RUN")
@output_dir_option
@run_backend_option
@click.option("--prefix", default="", help="Only paths starting with this.")
def ls_command(run: str, output_dir: str, backend: str | None, prefix: str) -> None:
    """List RUN's files with their sizes."""
    attempt, impl = resolve_run(run, output_dir, backend)
    files = [(p, s) for p, s in impl.list_outputs(attempt) if p.startswith(prefix)]
    for path, size in files:
        click.echo(f"{_size(size):>10}  {path}")
    click.echo(f"{len(files)} files, {_size(sum(s for _, s in files))}", err=True)


@outputs_group.command("get")
@click.argument("run", metavar="RUN")
@click.argument("dest", metavar="DEST")
@output_dir_option
@run_backend_option
@click.option(
    "--prefix", default="", help="Only paths starting with this (e.g. checkpoints/checkpoint-100/)."
)
def get_command(run: str, dest: str, output_dir: str, backend: str | None, prefix: str) -> None:
    """Copy RUN's files (those under --prefix) into DEST."""
    from vft.core.runs.outputs import check_dest

    check_dest(Path(dest))  # before any backend is asked: one line, nothing made
    attempt, impl = resolve_run(run, output_dir, backend)
    written = impl.get_outputs(attempt, Path(dest), prefix=prefix)
    click.echo(f"{len(written)} files into {dest}")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
