"""`vft envs`: the Verifiers environments a recipe can name here, and what each one is."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from vft.train.cpu_stack import WHEEL_TRAIN

#: args `vft envs` describes a built-in with, so that listing never downloads a dataset
#: (its row marks the eval split it shows: the shipped rows, not a recipe's default data)
LISTING_ARGS: dict[str, dict[str, Any]] = {"gsm8k": {"dataset": "fixture"}}
#: what users read for `api`: verifiers' classic API is "legacy" inside vft only
API_WORDS = {"legacy": "classic"}
TOOLS_LEGEND = (
    "tool calls: tools the model calls through the chat API (the inference server needs a "
    "tool-call parser); a tool the environment reads from the reply's text (a ```python "
    "block) is not counted"
)
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


def _cache_file(env_id: str) -> Path | None:
    """Where `vft plan` keeps this environment's facts for the listing's args (same key:
    its files, args, verifiers and vft versions), so either command fills it for both."""
    from vft.core.planning.facts_cache import cache_file

    return cache_file(env_id, LISTING_ARGS.get(env_id, {}), ())


def _cached(path: Path | None) -> dict[str, Any] | None:
    """The facts in `path` (None: none, unreadable, or a note/absence `vft plan` kept)."""
    from vft.core.planning import facts_cache

    hit = facts_cache.read(path)
    return hit.facts.to_dict() if hit is not None and hit.facts is not None else None


def _keep(path: Path | None, facts: dict[str, Any]) -> None:
    """Write `facts` as `vft plan` writes them."""
    from vft.core.planning import facts_cache
    from vft.core.planning.environment_facts import EnvironmentFacts

    with contextlib.suppress(ValueError, KeyError, TypeError):
        facts_cache.keep(path, EnvironmentFacts.from_dict(facts))


def describe_all(ids: list[str]) -> dict[str, dict[str, Any]]:
    """Facts per id: from `vft plan`'s per-environment cache, else from one
    `python -m vft.train.envs.describe` subprocess for the rest (verifiers is imported
    there, once; describing takes seconds); {} when it cannot run (no trainer stack)."""
    files = {env_id: _cache_file(env_id) for env_id in ids}
    out: dict[str, dict[str, Any]] = {}
    for env_id, path in files.items():
        hit = _cached(path)
        if hit is not None:
            out[env_id] = hit
    fresh = _describe([env_id for env_id in ids if env_id not in out])
    for env_id, facts in fresh.items():
        if "error" not in facts and env_id in files:
            _keep(files[env_id], facts)
            facts = _cached(files[env_id]) or facts
        out[env_id] = facts
    return {env_id: out[env_id] for env_id in ids if env_id in out}


def _describe(ids: list[str]) -> dict[str, dict[str, Any]]:
    """Facts per id from one describe subprocess; {} when it cannot run."""
    if not ids:
        return {}
    listed = [*ids, "__none__"] if len(ids) == 1 else ids  # two ids or more: the list form
    argv = [sys.executable, "-m", "vft.train.envs.describe", *listed]
    argv += ["--args", json.dumps(LISTING_ARGS)]
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
    api = str(facts.get("api"))
    split = str(ev.get("size")) if ev.get("present") else "no"
    return {
        "api": API_WORDS.get(api, api),
        "turns": "multi" if facts.get("multi_turn") else "single",
        "tools": _yes(facts.get("uses_tools")),
        "eval split": f"{split}*" if facts.get("id") in LISTING_ARGS else split,
    }


def listing_note(env_id: str) -> str:
    """Why a row's eval split (marked *) is not what `vft plan` loads by default."""
    args = json.dumps(LISTING_ARGS[env_id])
    return (
        f"* {env_id}: listed with environment.args = {args} (rows it ships, so listing "
        "downloads nothing); a recipe without them loads its default data (vft plan shows it)"
    )


def table_of(envs: list[Any], facts: dict[str, dict[str, Any]], describe: bool, width: int) -> Any:
    """The listing as a rich Table for a terminal `width` columns wide: the id (what users
    copy into a recipe) is never cut or wrapped; when the table does not fit, the other
    columns' headers wrap between words (their cells are single words)."""
    from vft.cli.text import keyed_table

    cols = ["source", "version"]
    if describe:
        cols += ["api", "turns", "tool calls", "eval split"]
    rows = []
    for e in envs:
        cells = [e.id, e.source, e.version or "-"]
        if describe:
            r = _row(facts.get(e.id))
            cells += [r["api"], r["turns"], r["tools"], r["eval split"]]
        rows.append(cells)
    return keyed_table("id", cols, rows, width)


@click.command("envs")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--all", "show_all", is_flag=True, help="Also list the project's uninstalled ones.")
@click.option(
    "--describe/--no-describe",
    default=True,
    help="Load each environment (in a subprocess, or from the facts cache) to show its API, turns, tool calls and eval split.",
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
                if e.id in LISTING_ARGS:
                    d["described_with_args"] = LISTING_ARGS[e.id]
            out.append(d)
        click.echo(json.dumps(out, indent=2))
        return
    from rich.console import Console

    console = Console()
    console.print(table_of(envs, facts, describe, console.width), crop=False)
    if describe and facts:
        for e in envs:
            if e.id in LISTING_ARGS and "error" not in facts.get(e.id, {"error": ""}):
                console.print(listing_note(e.id), markup=False, highlight=False)
        console.print(TOOLS_LEGEND, markup=False, highlight=False)
    errors = [f["error"] for f in facts.values() if "error" in f]
    for line in errors:
        click.echo(f"  {line}", err=True)
    if not show_all:
        click.echo("(--all also lists the project's environments/ not installed yet)")
