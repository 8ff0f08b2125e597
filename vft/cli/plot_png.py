"""Runs' curves as an image file with matplotlib (`vft plot -o FILE`): one panel per
metric, the runs overlaid. matplotlib is imported here only, and only when asked for."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from vft.core.errors import UserError

#: the file types written, by suffix
FORMATS = (".png", ".svg", ".pdf")
PLOT_HINT = "pip install 'vft[plot]'"

Points = Sequence[tuple[int, float]]


def check_output(path: Path) -> None:
    """Refuse, before any work, a file name matplotlib would not write."""
    if path.suffix.lower() not in FORMATS:
        raise UserError(
            f"-o: {path.name!r} has no image suffix; use one of {', '.join(FORMATS)} "
            "(e.g. -o curves.png)"
        )
    if not path.parent.is_dir():
        raise UserError(f"-o: folder {path.parent} does not exist; create it or choose another")


def write_image(path: Path, curves: Mapping[str, Mapping[str, Points]], title: str = "") -> None:
    """`curves`: metric -> run label -> (step, value) points; one panel per metric."""
    check_output(path)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise UserError(
            "-o: writing an image needs matplotlib, which is not installed", hint=PLOT_HINT
        ) from None
    cols = 1 if len(curves) == 1 else 2
    rows = math.ceil(len(curves) / cols)
    fig = Figure(figsize=(6.4 * cols, 3.4 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).flatten()
    labels = sorted({label for runs in curves.values() for label in runs})
    colours = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    for ax, (metric, runs) in zip(axes, curves.items(), strict=False):
        for label, points in runs.items():
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, label=label, color=colours[label], linewidth=1.4)
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in axes[len(curves) :]:
        ax.set_visible(False)
    if len(labels) > 1 or title:
        fig.legend(
            [Line2D([], [], color=colours[label]) for label in labels],
            labels,
            loc="outside lower center",
            ncols=min(4, len(labels)),
        )
    if title:
        fig.suptitle(title)
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise UserError(f"-o: cannot write {path}: {exc.strerror or exc}") from None
