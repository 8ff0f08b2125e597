"""`vft envs`: the Verifiers environments a recipe can name here."""

from __future__ import annotations

import json

import click


@click.command("envs")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--all", "show_all", is_flag=True, help="Also list the project's uninstalled ones.")
def envs_command(as_json: bool, show_all: bool) -> None:
    """List installed Verifiers environments (the ids `environment.id` accepts)."""
    from vft.core.planning.environments import installed_environments, project_environments

    envs = installed_environments()
    if show_all:
        from dataclasses import replace

        project = {e.id: e for e in project_environments()}
        envs = [replace(e, path=project[e.id].path) if e.id in project else e for e in envs]
        known = {e.id for e in envs}
        envs += [e for e in project.values() if e.id not in known]
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in envs], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(expand=False)
    for col in ("id", "module", "source", "version"):
        table.add_column(col)
    for e in envs:
        table.add_row(e.id, e.module, e.source, e.version or "-")
    Console().print(table)
    if not show_all:
        click.echo("(--all also lists the project's environments/ not installed yet)")
