"""`vft plot RUN [RUN...]`: reward, its components, loss and KL by step, several runs
overlaid; in the terminal (braille charts), or as an image file with `-o`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from vft.cli.options import run_backend_option
from vft.cli.run_common import output_dir_option


@click.command("plot")
@click.argument("runs", nargs=-1, metavar="RUN...")
@click.option(
    "--sweep",
    metavar="NAME",
    help="Overlay every point of this sweep (vft sweep): its latest launch, or NAME/launch-N.",
)
@output_dir_option
@run_backend_option
@click.option(
    "--metric",
    "-m",
    "metrics",
    multiple=True,
    metavar="M",
    help="A metric of metrics.jsonl to plot (repeatable, or a,b); "
    "default: reward, its components, loss and kl.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the charts to this image (.png, .svg, .pdf; needs matplotlib).",
)
@click.option("--height", default=8, show_default=True, help="Terminal chart height in lines.")
@click.option(
    "--list-metrics",
    "list_metrics",
    is_flag=True,
    help="Print the metrics these runs logged (what --metric takes), one a line, and stop.",
)
def plot_command(
    runs: tuple[str, ...],
    sweep: str | None,
    output_dir: str,
    backend: str | None,
    metrics: tuple[str, ...],
    output: Path | None,
    height: int,
    list_metrics: bool,
) -> None:
    """Plot RUN's curves by step; several RUNs are overlaid, one colour each."""
    from vft.cli.run_common import note, resolve_run
    from vft.cli.run_metrics import metrics_rows
    from vft.core.errors import UserError
    from vft.core.runs.metrics import available, default_curves, series

    asked = [*runs, *(("--sweep", sweep) if sweep is not None else ())]
    if sweep is not None:
        from vft.core.sweeps.record import sweep_attempt_refs

        runs = (*runs, *sweep_attempt_refs(sweep, output_dir))
    if not runs:
        raise UserError("name a RUN to plot, or a sweep with --sweep NAME (see `vft runs`)")
    if output is not None:
        from vft.cli.plot_png import check_output

        check_output(output)  # before any run is read
    loaded: dict[str, list[dict[str, Any]]] = {}
    attempts: list[tuple[Any, Any]] = []
    for run in runs:  # the same attempt named twice is plotted once
        found = resolve_run(run, output_dir, backend)
        if all(found[0].path != a.path for a, _ in attempts):
            attempts.append(found)
    names = [a.run_name for a, _ in attempts]
    for attempt, impl in attempts:
        label = attempt.run_name
        if names.count(label) > 1 or label in loaded:
            label = f"{attempt.run_name} (attempt {attempt.number})"
        rows, why = metrics_rows(attempt, impl)
        if why:
            note(why)
        if not rows:
            note(f"{label}: no metrics yet (metrics.jsonl gets its first row after step 1)")
        loaded[label] = rows
    every = [row for rows in loaded.values() for row in rows]
    if not every:
        raise UserError(f"nothing to plot: no run of {', '.join(runs)} has logged a step yet")
    have = available(every)
    if list_metrics:
        click.echo("\n".join(have))
        return
    wanted = [m.strip() for item in metrics for m in item.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in have]
    if unknown:
        plans = [a for a, _ in attempts]
        raise UserError(f"--metric: {unknown_metric(unknown[0], have, plans, asked)}")
    chosen = wanted or default_curves(every)
    curves = {m: {label: series(rows, m) for label, rows in loaded.items()} for m in chosen}
    if not wanted:
        curves = {m: runs for m, runs in curves.items() if not _repeats_total(m, runs, curves)}
    if output is not None:
        from vft.cli.plot_png import write_image

        write_image(output, curves, title=" vs ".join(loaded) if len(loaded) > 1 else "")
        click.echo(f"wrote {output} ({', '.join(chosen)})")
        return
    show_terminal(curves, list(loaded), height=max(2, height))


#: trainer metrics a run logs only with a setting on, and why one without it has none
NOT_LOGGED_WHY = {"kl": "trainer.beta = 0: no KL term; set trainer.beta > 0 to log it"}
#: how many metrics an unknown --metric names besides the closest one
FEW = 5


def unknown_metric(metric: str, have: list[str], attempts: list[Any], asked: list[str]) -> str:
    """Why `metric` cannot be plotted, in one line: a trainer metric these runs' settings
    keep it from logging (kl with trainer.beta = 0); else the closest name, a few others
    and how to list them all (a run logs tens of metrics: too many for one line)."""
    if metric in NOT_LOGGED_WHY and all(_beta(a) == 0 for a in attempts):
        these = "this run" if len(attempts) == 1 else "these runs"
        return f"{metric}: not logged by {these} ({NOT_LOGGED_WHY[metric]})"
    import difflib
    import shlex

    from vft.core.runs.metrics import DEFAULT_CURVES

    close = difflib.get_close_matches(metric, have, n=FEW, cutoff=0.6)
    hint = f": did you mean {close[0]!r}?" if close else ""
    common = [m for m in DEFAULT_CURVES if m in have]
    few = list(dict.fromkeys([*close[1:], *common]))[:FEW]
    few = [m for m in few if m not in close[:1]]
    listing = " ".join(shlex.quote(a) for a in ["vft", "plot", *asked, "--list-metrics"])
    some = f"{'others' if close else 'some'}: {', '.join(few)}; " if few else ""
    return f"unknown metric {metric!r}{hint} ({some}all {len(have)}: {listing})"


def _beta(attempt: Any) -> float | None:
    """The attempt's KL coefficient from its plan.json; None when it cannot be read."""
    from vft.core.errors import UserError

    try:
        return float(attempt.plan().trainer.training.beta)
    except (UserError, AttributeError, TypeError, ValueError):
        return None


def show_terminal(curves: dict[str, dict[str, Any]], labels: list[str], *, height: int) -> None:
    """Each metric as a braille chart sized to the terminal, a legend on top for several runs."""
    from rich.console import Console

    from vft.cli.charts import braille_chart, legend

    console = Console(highlight=False)
    width = max(20, min(console.width, 120) - 14)
    if len(labels) > 1:
        console.print(legend(labels))
    for metric, runs in curves.items():
        title = f"{metric}  ({last_values(runs)})" if any(runs.values()) else metric
        for line in braille_chart(title, runs, width=width, height=height):
            console.print(line, soft_wrap=True)


def last_values(runs: dict[str, Any]) -> str:
    """`last value: 0.98` for one run (no label to mistake for a number); with several,
    each run's: `last value: smoke (attempt 1) 0.98, smoke (attempt 2) 0.5`."""
    ends = {label: pts[-1][1] for label, pts in runs.items() if pts}
    if len(runs) == 1:
        return f"last value: {next(iter(ends.values())):.4g}"
    return "last value: " + ", ".join(f"{label} {value:.4g}" for label, value in ends.items())


def _repeats_total(metric: str, runs: dict[str, Any], curves: dict[str, Any]) -> bool:
    """A reward component equal to the total at every step (a single reward function;
    equal to float32 precision, as the trainer logs them):
    its panel would draw the same curve twice."""
    total = curves.get("reward")
    if not metric.startswith("reward/") or total is None:
        return False
    return all(
        len(pts) == len(total.get(label, ()))
        and all(
            x == tx and math.isclose(y, ty, rel_tol=1e-6, abs_tol=1e-9)
            for (x, y), (tx, ty) in zip(pts, total[label], strict=True)
        )
        for label, pts in runs.items()
    )
