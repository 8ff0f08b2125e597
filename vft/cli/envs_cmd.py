"""`vft envs`: the Verifiers environments a recipe can name here, and what each one is."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import click

from vft.train.cpu_stack import WHEEL_TRAIN

#: args `vft envs` describes a built-in with, so that listing never downloads a dataset
LISTING_ARGS: dict[str, dict[str, Any]] = {"gsm8k": {"dataset": "fixture"}}
DESCRIBE_TIMEOUT_S = 180.0
NO_VERIFIERS = (
    "verifiers is not installed here: environments are listed without their API "
    f"(fix: {WHEEL_TRAIN})"
)


def verifiers_installed() -> bool:
    """Whether the describe subprocess can load an environment, read from the cached index
    of installed packages (no import, nothing spawned)."""
    from vft.core.installed import installed

    return installed().version("verifiers") is not None


def describe_all(ids: list[str]) -> dict[str, dict[str, Any]]:
    """Facts per id from one `python -m vft.train.envs.describe` subprocess (verifiers is
    imported there, once); {} when it cannot run (no trainer stack installed here)."""
    if not ids:
        return {}
    argv = [
        sys.executable,
        "-m",
        "vft.train.envs.describe",
        *ids,
        "--args",
        json.dumps(LISTING_ARGS),
    ]
    if len(ids) == 1:
        argv += ["__none__"]  # keep the list form
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=DESCRIBE_TIMEOUT_S, check=False
        )
        facts = json.loads(done.stdout) if done.returncode == 0 else []
    except (subprocess.TimeoutExpired, ValueError):
        facts = []
    return {f["id"]: f for f in facts if isinstance(f, dict) and "id" in f}


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def _row(facts: dict[str, Any] | None) -> dict[str, str]:
    if not facts:
        return {"api": "-", "turns": "-", "tools": "-", "eval split": "-"}
    if "error" in facts:
        return {"api": "error", "turns": "-", "tools": "-", "eval split": "-"}
    ev = facts.get("eval_split") or {}
    return {
        "api": str(facts.get("api")),
        "turns": "multi" if facts.get("multi_turn") else "single",
        "tools": _yes(facts.get("uses_tools")),
        "eval split": str(ev.get("size")) if ev.get("present") else "no",
    }


@click.command("envs")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--all", "show_all", is_flag=True, help="Also list the project's uninstalled ones.")
@click.option(
    "--describe/--no-describe",
    default=True,
    help="Load each environment (in a subprocess) to show its API, turns, tools and eval split.",
)
def envs_command(as_json: bool, show_all: bool, describe: bool) -> None:
    """List Verifiers environments (the ids `environment.id` accepts): built in, installed."""
    from dataclasses import replace

    from vft.core.planning.environments import installed_environments, project_environments

    envs = installed_environments()
    if show_all:
        project = {e.id: e for e in project_environments()}
        envs = [replace(e, path=project[e.id].path) if e.id in project else e for e in envs]
        known = {e.id for e in envs}
        envs += [e for e in project.values() if e.id not in known]
    loadable = [e.id for e in envs if e.source in ("builtin", "installed")]
    no_verifiers = describe and bool(loadable) and not verifiers_installed()
    if no_verifiers:
        click.echo(NO_VERIFIERS, err=True)
    facts = describe_all(loadable) if describe and not no_verifiers else {}
    if as_json:
        out = []
        for e in envs:
            d: dict[str, Any] = dict(e.to_dict())
            f = facts.get(e.id)
            if f is not None:
                d["facts"] = f
            out.append(d)
        click.echo(json.dumps(out, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    cols = ["id", "source", "version"]
    if describe:
        cols += ["api", "turns", "tools", "eval split"]
    table = Table(expand=False)
    for col in cols:
        table.add_column(col)
    for e in envs:
        cells = [e.id, e.source, e.version or "-"]
        if describe:
            r = _row(facts.get(e.id))
            cells += [r["api"], r["turns"], r["tools"], r["eval split"]]
        table.add_row(*cells)
    Console().print(table)
    errors = [f["error"] for f in facts.values() if "error" in f]
    for line in errors:
        click.echo(f"  {line}", err=True)
    if not show_all:
        click.echo("(--all also lists the project's environments/ not installed yet)")
