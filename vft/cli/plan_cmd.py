"""`vft plan`, `vft init`, `vft schema`: everything that looks at a recipe without running it."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from vft.cli import text
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
    """The human view of a plan; also printed by `vft run --dry-run`."""
    click.echo("\n".join(plan_lines(plan, extra_rows, text.width())))


def plan_lines(plan: Plan, extra_rows: list[tuple[str, str]], columns: int) -> list[str]:
    """The plan as lines of at most `columns` (a word longer than a line keeps its own):
    the summary, the topology table (with each process's memory per GPU), one section per
    process with its command, what the table cannot say of memory, one cost line, the backend's rows, the environment, setup, warnings.

    Every text is redacted before it is laid out: a wrapped line could split a secret
    over two lines, where no redaction of the printed text would find it."""
    hide = plan_redactor(plan).text
    out = text.phrases([hide(part) for part in _summary(plan)], columns, indent="  ")
    mem = plan.memory
    rows = [
        [
            hide(p.name),
            str(p.node),
            ",".join(map(str, p.devices)) or "-",
            _memory_cell(mem, p.role) if p.devices else "-",
        ]
        for p in plan.processes
    ]
    headers = ("process", "node", "devices", _memory_header(mem))
    out += ["", *text.table(headers, rows, columns)]
    for p in plan.processes:
        where = f"node {p.node}" + (f", GPU {','.join(map(str, p.devices))}" if p.devices else "")
        out += ["", f"{hide(p.name)} ({where}):"]
        out += text.command([hide(a) for a in p.argv], columns)
    out.append("")
    memory = _memory_line(mem)
    if memory:
        out += text.wrap(memory, columns, indent="  ")
    from vft.core.planning.budget import budget_rows

    # a backend's "warning" rows (local: too few GPUs here) go with the plan's warnings
    backend_warnings = [value for label, value in extra_rows if label == "warning"]
    rows_left = [
        *budget_rows(plan),
        *((label, value) for label, value in extra_rows if label != "warning"),
    ]
    out += text.wrap(hide(cost_line(plan)), columns, indent="  ")
    for label, value in rows_left:
        if "\n" in value:  # a script or file: printed as is, never wrapped
            out += [f"{hide(label)}:", *hide(value).strip("\n").splitlines()]
        else:
            out += text.wrap(hide(value), columns, indent="  ", first=f"{hide(label)}: ")
    if plan.trainer.environment.summary:
        out += text.wrap(
            hide(plan.trainer.environment.summary), columns, indent="  ", first="environment: "
        )
    for step in plan.setup:
        out.append(f"setup (node {step.node}):")
        out += text.command([hide(a) for a in step.argv], columns)
    shown_as_row = any(label == "budget" for label, _ in rows_left)
    for w in [*plan.warnings, *backend_warnings]:
        if shown_as_row and w.startswith("budget:"):  # the budget row says it already
            continue
        out += text.wrap(hide(w), columns, indent="  ", first="warning: ")
    return out


def cost_line(plan: Plan) -> str:
    """One line: the price per hour, what it includes, and the run's cost when
    resources.step_seconds tells how long it takes."""
    cost = plan.cost
    source = getattr(cost, "source", "catalog")
    if source == "none":
        return (
            "cost: unknown: own hardware with no price "
            "(set resources.usd_per_hour for $/h and a per-run estimate)"
        )
    per_hour = cost.usd_per_hour
    host = getattr(cost, "host_usd_per_hour", 0.0)
    if source == "recipe":
        what = "resources.usd_per_hour"
    elif plan.gpu_type:
        gpus = f"{plan.gpus_per_node * plan.nodes} x {plan.gpu_type}"
        what = (
            f"{gpus} ${per_hour - host:.2f} + CPU/memory ${host:.2f}, at {plan.backend}'s prices"
            if host
            else f"{gpus} at catalog prices, GPUs only"
        )
    else:
        what = f"CPU/memory at {plan.backend}'s prices" if host else "no GPU"
    line = f"cost: ${per_hour:.2f}/h ({what}"
    if cost.hours is None:
        return line + "; set resources.step_seconds for a per-run estimate)"
    return line + f"), ~${per_hour * cost.hours:.2f} for {cost.hours:g} h"


def _summary(plan: Plan) -> list[str]:
    """The header's phrases: a line of it breaks only between them."""
    where = "cpu" if plan.is_cpu else f"{plan.gpu_type}:{plan.gpus_per_node}"
    inf = plan.inference
    if inf.colocated:
        generation = "generation: vLLM colocated in the trainer"
    elif inf.engine and inf.device == "cpu":
        generation = f"inference: a {inf.engine} server on the CPU"
    elif inf.engine:
        generation = f"inference dp={inf.data_parallel} tp={inf.tensor_parallel}"
    else:
        generation = "generation in the trainer process"
    parts = [
        f"{plan.name} on {plan.backend}: {where} x {plan.nodes} node(s)",
        generation,
        f"trainer {plan.trainer.num_processes} process(es)",
        f"ZeRO-{plan.trainer.zero_stage}",
    ]
    if inf.weight_sync:
        parts.append(f"weight sync: {inf.weight_sync} after every step")
    return parts


def _memory_header(mem: Mapping[str, Any]) -> str:
    """The table's memory column, with the GPU's size when the plan knows it."""
    gib = mem.get("gpu_gib")
    return f"memory/GPU (of {gib:g} GiB)" if isinstance(gib, (int, float)) else "memory/GPU"


def _memory_line(mem: Mapping[str, Any]) -> str | None:
    """What the table does not show: a colocated vLLM's share of the trainer's GPUs."""
    if mem.get("colocated_vllm_gib_per_gpu") is None:
        return None
    vllm = mem["colocated_vllm_gib_per_gpu"]
    return (
        f"memory/GPU: the trainer's ~{mem['trainer_gib_per_gpu']} GiB holds colocated vLLM "
        f"~{vllm} GiB (gpu_memory_utilization {mem['vllm_gpu_memory_utilization']:g}: "
        f"weights ~{mem['inference_weights_gib_per_gpu']} GiB + KV cache "
        f"~{mem['inference_kv_cache_gib_per_gpu']} GiB)"
    )


def _memory_cell(mem: Mapping[str, Any], role: Role) -> str:
    key = "trainer_gib_per_gpu" if role == Role.TRAINER else "inference_weights_gib_per_gpu"
    if mem.get(key) is None:
        return "?"
    if role == Role.TRAINER:
        return f"~{mem[key]} GiB"
    return f"~{mem[key]} GiB + {mem['inference_kv_cache_gib_per_gpu']} GiB KV"


@click.command("init")
@click.argument("path", default="recipe.toml", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def init_command(path: str, force: bool) -> None:
    """Write a commented starter recipe to PATH (default recipe.toml).

    The next steps it prints suit this machine: with too few NVIDIA GPUs for the starter's
    `resources.gpus`, planning it for Modal, or the CPU smoke run (no network either way)."""
    dest = Path(path)
    if dest.exists() and not force:
        raise UserError(f"{path} exists; use --force to overwrite it")
    import tomllib

    from vft.backends.local import preflight
    from vft.core.resources import starter_recipe_text

    starter = starter_recipe_text()
    dest.write_text(starter)
    wanted = str(tomllib.loads(starter)["resources"]["gpus"])  # "A100-80GB:2"
    kind, _, count = wanted.partition(":")
    gpus, source = (None, "") if kind == "cpu" else preflight.visible_gpus()
    if kind == "cpu" or (gpus is not None and len(gpus) >= int(count or 1)):
        click.echo(f"wrote {path}; check it with: vft plan {path}")
        return
    click.echo(
        "\n".join(
            (
                f"wrote {path}, sized for {count or 1} x {kind}; this machine has "
                f"{preflight.found_text(gpus, source)}. Next:",
                f"  vft plan {path} -b modal   # the same recipe on Modal's GPUs",
                "  vft run                         # the CPU smoke run: a tiny model, ~30 s",
            )
        )
    )


@click.command("schema")
def schema_command() -> None:
    """Print the recipe's JSON Schema (for editor completion and validation)."""
    from vft.core.recipe.schema import Recipe

    click.echo(json.dumps(Recipe.model_json_schema(), indent=2))
