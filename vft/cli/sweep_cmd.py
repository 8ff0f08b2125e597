"""`vft sweep`: one recipe, a grid of values, one ordinary run per grid point.

Every point is planned first (`vft.launch.prepare` with the point's `--set` overrides)
and shown in one table; one invalid point refuses the whole sweep before anything
starts. Each point is then launched by `vft.launch.launch(..., detach=True)`, the code
path of `vft run --detach`, so it is a normal run: its own folder, run.json, logs, `vft
status`, `vft stop`. The sweep watches the points through their backend and stops every
running one on Ctrl-C or SIGTERM (vft/core/sweeps/runner.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from vft.cli.options import backend_option, recipe_argument, set_option
from vft.cli.run_common import note
from vft.core.errors import UserError

#: points running at once unless --max-parallel says: one machine's GPUs (or CPU) hold one
#: run; a cloud backend rents a machine per point
DEFAULT_PARALLEL = {"local": 1}
DEFAULT_PARALLEL_REMOTE = 4
#: seconds between status checks of the running points: a file read locally, a service's
#: API elsewhere
POLL_S = {"local": 1.0}
POLL_S_REMOTE = 10.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class PlannedPoint:
    name: str
    values: tuple[tuple[str, Any], ...]
    overrides: tuple[str, ...]
    plan: Any  # vft.core.plan.Plan


@click.command("sweep")
@recipe_argument
@click.option(
    "--grid",
    "grid",
    multiple=True,
    metavar="KEY.PATH=V1,V2",
    help="A recipe key and the values to try (TOML, as in --set); repeatable, one run per "
    "combination. Adds to (or replaces a key of) the recipe's [sweep] table.",
)
@backend_option
@set_option
@click.option(
    "--max-parallel",
    type=click.IntRange(1, 256),
    default=None,
    help="Points running at once (default: 1 on local, 4 elsewhere). Locally, GPU points "
    "also wait for free GPUs.",
)
@click.option("--name", "sweep_name", help="The sweep's name (default: the recipe's name).")
@click.option("--dry-run", is_flag=True, help="Plan every point and show the table; start nothing.")
def sweep_command(
    recipe: str,
    grid: tuple[str, ...],
    backend: str,
    overrides: tuple[str, ...],
    max_parallel: int | None,
    sweep_name: str | None,
    dry_run: bool,
) -> None:
    """Run RECIPE once per point of a grid, each point an ordinary run named after its
    values. The grid is the recipe's [sweep] table and the --grid options:

    \b
      vft sweep smoke.toml --grid trainer.learning_rate=1e-6,3e-6 --grid trainer.beta=0,0.04
      four runs: smoke-lr1e-06-beta0, smoke-lr1e-06-beta0.04, smoke-lr3e-06-beta0, ...

    Plans every point first and shows them in one table (GPUs, $/h, estimated $); one
    invalid point refuses the sweep before anything starts. Ends with each point's status
    and reward (again: vft runs --sweep NAME). Running a sweep again under its name is a
    new launch of it (each point's next attempt); the earlier launches are kept (vft runs
    --sweep NAME/launch-N). Exits 0 when every point succeeded, 1 when one did not, 130
    after Ctrl-C, which stops every running point.
    """
    from vft.core.recipe import NAME_PATTERN, load_recipe
    from vft.core.sweeps.grid import axes_of, check_override_conflicts, expand
    from vft.core.sweeps.names import point_names

    base = load_recipe(recipe, overrides)
    axes = axes_of(base.sweep, grid)
    if not axes:
        raise UserError(
            "nothing to sweep: give --grid KEY=V1,V2 (e.g. --grid trainer.learning_rate=1e-6,3e-6) "
            "or a [sweep] table in the recipe"
        )
    check_override_conflicts(axes, overrides)
    name = sweep_name or base.name
    if not re.match(NAME_PATTERN, name):
        raise UserError(
            f"--name: {name[:100]!r} is not allowed: use letters, digits, '.', '_' or '-' "
            "(at most 63 characters, starting alphanumeric)"
        )
    points = expand(axes)
    names = point_names(name, points)
    parallel = max_parallel or DEFAULT_PARALLEL.get(backend, DEFAULT_PARALLEL_REMOTE)
    planned = [
        plan_point(recipe, backend, point_name, point.values, (*overrides, *point.overrides()))
        for point_name, point in zip(names, points, strict=True)
    ]
    if dry_run:
        show_table(planned, parallel)
        try:  # a dry run shows the refusal a real sweep would stop at, as `vft run` does
            _ = local_devices(planned) if backend == "local" else None
        except UserError as exc:
            note(f"a real sweep would stop here: {exc.line()}")
            note("dry run: nothing started")
            sys.exit(exc.exit_code)
        note("dry run: nothing started")
        return
    devices = local_devices(planned) if backend == "local" else None
    show_table(planned, parallel)
    code = run_sweep(recipe, backend, name, axes, overrides, planned, parallel, devices)
    sys.exit(code)


def plan_point(
    recipe: str, backend: str, name: str, values: Any, overrides: tuple[str, ...]
) -> PlannedPoint:
    """One point planned as `vft plan --set ...` would; an error names the point."""
    from vft.core.sweeps.grid import toml_value
    from vft.launch import prepare

    # a point is one run, not a grid: its recipe keeps no [sweep] table
    point_sets = (*overrides, f"name={json.dumps(name)}", "sweep={}")
    try:
        prepared = prepare(recipe, point_sets, backend)
    except UserError as exc:
        shown = ", ".join(f"{k}={toml_value(v)}" for k, v in values)
        raise UserError(f"sweep point {name} ({shown}): {exc.line()}") from None
    return PlannedPoint(name, tuple(values), point_sets, prepared.plan)


def local_devices(planned: list[PlannedPoint]) -> list[str] | None:
    """This machine's GPUs (as CUDA_VISIBLE_DEVICES ids) for GPU points to share out, or
    None for CPU points; a point that needs more GPUs than there are is refused now."""
    if all(p.plan.is_cpu for p in planned):
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [d.strip() for d in visible.split(",") if d.strip()]
        source = f"CUDA_VISIBLE_DEVICES={visible}"
    else:
        from vft.backends.local.preflight import query_gpus

        gpus, source = query_gpus()
        ids = [str(g.index) for g in gpus or []]
    for p in planned:
        if not p.plan.is_cpu and p.plan.gpus_per_node > len(ids):
            raise UserError(
                f"sweep point {p.name}: resources.gpus: it needs {p.plan.gpus_per_node} GPU(s), "
                f"this machine has {len(ids)} ({source})",
                hint="use another backend: see vft backends",
            )
    return ids


def show_table(planned: list[PlannedPoint], parallel: int) -> None:
    """Every point in one table: its values, GPUs, $/h and estimated $; then the totals."""
    from rich.console import Console
    from rich.table import Table

    from vft.core.sweeps.names import column_headers

    keys = [k for k, _ in planned[0].values]
    table = Table(title=f"{len(planned)} points, at most {parallel} at once")
    table.add_column("point", no_wrap=True)  # a run name, copied into other commands whole
    for key in keys:
        table.add_column(_cell(column_headers(keys)[key]), overflow="fold")
    for col in ("GPUs", "$/h", "est. $"):
        table.add_column(col, justify="right", no_wrap=True)
    for p in planned:
        table.add_row(
            _cell(p.name),
            *(_cell(v) for _, v in p.values),
            _gpus(p.plan),
            _usd(p.plan.cost.usd_per_hour if p.plan.cost.known else None),
            _usd(p.plan.cost.usd_per_run if p.plan.cost.known else None),
        )
    rates = sorted((p.plan.cost.usd_per_hour for p in planned if p.plan.cost.known), reverse=True)
    runs = [p.plan.cost.usd_per_run for p in planned]
    total = sum(r for r in runs if r is not None) if runs and None not in runs else None
    known = all(p.plan.cost.known for p in planned)
    table.add_section()
    table.add_row(
        "total",
        *([""] * len(keys)),
        "",
        _usd(sum(rates[:parallel]) if known else None),
        _usd(total if known else None),
    )
    console = Console()
    console.print(table)
    if known and total is None:
        console.print("est. $: set resources.step_seconds for a per-run estimate")
    _show_warnings(console, planned)


def _show_warnings(console: Any, planned: list[PlannedPoint]) -> None:
    from rich.markup import escape

    from vft.core.secrets import redact

    seen: dict[str, list[str]] = {}
    for p in planned:
        for w in p.plan.warnings:
            seen.setdefault(w, []).append(p.name)
    for text, where in seen.items():
        who = "" if len(where) == len(planned) else f" ({', '.join(where)})"
        console.print(f"[yellow]warning{escape(who)}:[/] {escape(redact(text))}")


def _gpus(plan: Any) -> str:
    if plan.is_cpu:
        return "cpu"
    return f"{plan.gpu_type}:{plan.gpus_per_node}" + (f" x {plan.nodes}" if plan.nodes > 1 else "")


def _usd(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cell(value: Any) -> str:
    from rich.markup import escape

    from vft.core.secrets import redact
    from vft.core.sweeps.grid import toml_value

    return escape(redact(value if isinstance(value, str) else toml_value(value)))


def run_sweep(
    recipe: str,
    backend: str,
    name: str,
    axes: Any,
    overrides: tuple[str, ...],
    planned: list[PlannedPoint],
    parallel: int,
    devices: list[str] | None,
) -> int:
    """Launch and watch every point; the exit code of the sweep."""
    from vft.core.node.procs import on_signals
    from vft.core.sweeps.record import PointRecord, SweepRecord, new_launch
    from vft.core.sweeps.runner import Started, SweepRun

    output_dir = planned[0].plan.run.output_dir
    record = SweepRecord(
        name=name,
        recipe=str(Path(recipe).resolve()),
        backend=backend,
        axes=[{"key": a.key, "values": list(a.values)} for a in axes],
        overrides=list(overrides),
        max_parallel=parallel,
        points=[PointRecord(p.name, dict(p.values)) for p in planned],
    )
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        if not received:
            note(f"{signal.Signals(signum).name}: stopping the sweep")
        received.append(signum)

    def start(point: str, gpus: tuple[str, ...]) -> Started:
        from vft.core.plugins.registry import registry
        from vft.launch import launch

        p = next(p for p in planned if p.name == point)
        with _visible_devices(gpus):
            done = launch(recipe, p.overrides, backend, detach=True, note=_point_note(point))
        if done.exit_code >= 128:  # a signal stopped its install: the sweep stops too
            received.append(done.exit_code - 128)
        return Started(done.attempt, registry().backend(backend))

    # before any point starts: an unreadable record refuses, nothing started
    earlier = new_launch(record, output_dir)
    where = os.path.relpath(_record_path(output_dir, name))
    if earlier:  # a rerun, as `vft run` of a name that exists: the earlier launches are kept
        kept = ", ".join(r.ref for r in earlier)
        note(f"sweep {name}: launch {record.launch}, record {where} (kept: {kept})")
    else:
        note(f"sweep {name}: record {where}")
    with on_signals(STOP_SIGNALS, on_signal):
        done = SweepRun(
            record,
            output_dir,
            start,
            max_parallel=parallel,
            gpus={p.name: 0 if p.plan.is_cpu else p.plan.gpus_per_node for p in planned},
            devices=devices,
            stop_requested=lambda: bool(received),
            say=lambda text: note(f"sweep {name}: {text}"),
            poll_s=POLL_S.get(backend, POLL_S_REMOTE),
            reward_of=_point_rewards,
        ).run()
    show_summary(done, output_dir)
    if received:
        return 128 + received[0]
    return 0 if done.status == "succeeded" else 1


def _point_rewards(started: Any) -> Any:
    """A finished point's rewards read through its backend, as `vft runs --sweep` reads
    them (none when its metrics cannot be read: its summary row says why)."""
    from vft.cli.run_metrics import many_metrics_rows
    from vft.core.sweeps.rewards import rewards_of

    [(rows, _)] = many_metrics_rows([(started.attempt, started.backend)])
    return rewards_of(rows)


def _record_path(output_dir: str, name: str) -> Path:
    from vft.core.sweeps.record import sweep_path

    return sweep_path(output_dir, name)


def _point_note(point: str) -> Any:
    def say(line: str) -> None:
        note(line if line.startswith(f"run {point} ") else f"{point}: {line}")

    return say


@contextmanager
def _visible_devices(devices: tuple[str, ...]) -> Iterator[None]:
    """CUDA_VISIBLE_DEVICES narrowed to a point's GPUs while it launches: the local
    preflight checks those, and the detached node inherits them (the plan's device
    indices then index this list)."""
    if not devices:
        yield
        return
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


def show_summary(record: Any, output_dir: str) -> None:
    """Each point's status and reward, the sweep's last word (also `vft runs --sweep`)."""
    from rich.console import Console

    from vft.cli.runs_cmd import sweep_table
    from vft.core.sweeps.record import read_launches

    try:
        launches = [r.launch for r in read_launches(record.name, output_dir)]
    except UserError:  # the table still shows this launch
        launches = [record.launch]
    Console().print(sweep_table(record, output_dir, live=False, launches=launches))
    where = "" if output_dir == "outputs" else f" --output-dir {output_dir}"
    ref = record.name if record.launch == max(launches) else record.ref
    note(f"sweep {record.name} {record.status}; compare: vft runs --sweep {ref}{where}")
