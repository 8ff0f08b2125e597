"""`vft plan`, `vft init`, `vft schema`: everything that looks at a recipe without running it."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from vft.cli.options import backend_option, recipe_argument, set_option
from vft.core.errors import UserError
from vft.core.plan import Plan, Role
from vft.core.secrets import Redactor, option_secret_names


@click.command("plan")
@recipe_argument
@backend_option
@set_option
@click.option("--json", "as_json", is_flag=True, help="Print the Plan JSON (the backend contract).")
def plan_command(recipe: str, backend: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Show what RECIPE would run on a backend: processes, GPUs, memory, cost, warnings.

    Nothing is started and nothing is paid for; every check that can fail before launch
    runs here.
    """
    from vft.launch import prepare

    prepared = prepare(recipe, overrides, backend)
    if as_json:
        click.echo(plan_redactor(prepared.plan).text(prepared.plan.to_json()))
        return
    show_plan(prepared.plan, prepared.backend.describe(prepared.plan))


def plan_redactor(plan: Plan) -> Redactor:
    """Hides this machine's secrets (and the recipe's Modal secrets' variables) and every
    key-shaped string: the recipe holds none (refused), but the plan also quotes files,
    the environment's summary and the backend's rows."""
    return Redactor.for_env(os.environ, names=option_secret_names(plan.backend_options))


def show_plan(plan: Plan, extra_rows: list[tuple[str, str]]) -> None:
    """The human view of a plan; also printed by `vft run --dry-run`.

    Every text is redacted before rich lays it out: a folded table cell could split a
    secret over two lines, where no redaction of the printed text would find it."""
    from rich.console import Console
    from rich.markup import escape as rich_escape
    from rich.table import Table

    hide = plan_redactor(plan).text

    def escape(text: str) -> str:
        return rich_escape(hide(text))

    console = Console()
    where = "cpu" if plan.is_cpu else f"{plan.gpu_type}:{plan.gpus_per_node}"
    inf = plan.inference
    if inf.colocated:
        generation = ", generation: vLLM colocated in the trainer"
    elif inf.engine and inf.device == "cpu":
        generation = f", inference: a {inf.engine} server on the CPU"
    elif inf.engine:
        generation = f", inference dp={inf.data_parallel} tp={inf.tensor_parallel}"
    else:
        generation = ", generation in the trainer process"
    sync = f", weight sync: {inf.weight_sync} after every step" if inf.weight_sync else ""
    console.print(
        f"[bold]{escape(plan.name)}[/] on [bold]{escape(plan.backend)}[/]: "
        + f"{where} x {plan.nodes} node(s)"
        + generation
        + f", trainer {plan.trainer.num_processes} process(es), ZeRO-{plan.trainer.zero_stage}"
        + sync
    )
    table = Table(show_lines=False, expand=False)
    for col in ("process", "node", "devices", "memory/GPU", "command"):
        table.add_column(col, overflow="fold")
    mem = plan.memory
    for p in plan.processes:
        table.add_row(
            escape(p.name),
            str(p.node),
            ",".join(map(str, p.devices)) or "-",
            _memory_cell(mem, p.role) if p.devices else "-",
            escape(shlex.join(p.argv)),
        )
    console.print(table)
    if mem.get("colocated_vllm_gib_per_gpu") is not None:
        vllm = mem["colocated_vllm_gib_per_gpu"]
        console.print(
            f"memory/GPU: trainer ~{round(mem['trainer_gib_per_gpu'] - vllm, 1)} GiB + colocated "
            f"vLLM ~{vllm} GiB (gpu_memory_utilization {mem['vllm_gpu_memory_utilization']:g}: "
            f"weights ~{mem['inference_weights_gib_per_gpu']} GiB + KV cache "
            f"~{mem['inference_kv_cache_gib_per_gpu']} GiB), of {mem['gpu_gib']:g} GiB"
        )
    elif mem.get("trainer_gib_per_gpu") is not None:
        console.print(
            f"memory/GPU: trainer ~{mem['trainer_gib_per_gpu']} GiB, inference weights "
            f"~{mem['inference_weights_gib_per_gpu']} GiB + KV cache "
            f"~{mem['inference_kv_cache_gib_per_gpu']} GiB, of {mem['gpu_gib']:g} GiB"
        )
    cost = plan.cost
    line = f"cost: ${cost.usd_per_hour:.2f}/h"
    if cost.usd_per_run is not None:
        line += f", ~${cost.usd_per_run:.2f} for {cost.hours} h"
    else:
        line += " (set resources.step_seconds for a per-run estimate)"
    console.print(line)
    for label, text in extra_rows:
        if "\n" in text:  # a script or file: printed as is, never wrapped
            console.print(f"[bold]{escape(label)}:[/]")
            click.echo(hide(text))
        else:
            console.print(f"[bold]{escape(label)}:[/] {escape(text)}", soft_wrap=True)
    if plan.trainer.environment.summary:
        console.print(f"[bold]environment:[/] {escape(plan.trainer.environment.summary)}")
    for step in plan.setup:
        console.print(f"[bold]setup (node {step.node}):[/] {escape(shlex.join(step.argv))}")
    for w in plan.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")


def _memory_cell(mem: Mapping[str, Any], role: Role) -> str:
    key = "trainer_gib_per_gpu" if role == Role.TRAINER else "inference_weights_gib_per_gpu"
    if mem.get(key) is None:
        return "?"
    if role == Role.TRAINER:
        return f"~{mem[key]} GiB"
    return f"~{mem[key]} GiB + {mem['inference_kv_cache_gib_per_gpu']} KV"


@click.command("init")
@click.argument("path", default="recipe.toml", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def init_command(path: str, force: bool) -> None:
    """Write a commented starter recipe to PATH (default recipe.toml)."""
    dest = Path(path)
    if dest.exists() and not force:
        raise UserError(f"{path} exists; use --force to overwrite it")
    from vft.core.resources import starter_recipe_text

    dest.write_text(starter_recipe_text())
    click.echo(f"wrote {path}; check it with: vft plan {path}")


@click.command("schema")
def schema_command() -> None:
    """Print the recipe's JSON Schema (for editor completion and validation)."""
    from vft.core.recipe.schema import Recipe

    click.echo(json.dumps(Recipe.model_json_schema(), indent=2))
