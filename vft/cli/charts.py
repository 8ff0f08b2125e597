"""Curves drawn in a terminal: a one-line sparkline and a braille line chart, several runs
overlaid in their own colours. Text only (rich styles), no plotting library."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from rich.text import Text

BLOCKS = "▁▂▃▄▅▆▇█"
#: one colour per run, in order; a cell shared by two runs shows the later one's
COLOURS = ("cyan", "magenta", "yellow", "green", "red", "blue", "bright_white")
# braille dot bits by (column in the cell, row in the cell from the top)
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))

Points = Sequence[tuple[int, float]]


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """The last `width` values as block characters scaled between their min and max."""
    values = list(values)[-width:]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    top = len(BLOCKS) - 1
    return "".join(BLOCKS[top // 2 if span == 0 else round((v - low) / span * top)] for v in values)


def _bounds(runs: Mapping[str, Points]) -> tuple[float, float, float, float] | None:
    xs = [x for pts in runs.values() for x, _ in pts]
    ys = [y for pts in runs.values() for _, y in pts]
    if not xs:
        return None
    y_lo, y_hi = min(ys), max(ys)
    if y_hi == y_lo:  # a flat line sits in the middle
        pad = abs(y_lo) * 0.1 or 1.0
        y_lo, y_hi = y_lo - pad, y_hi + pad
    return float(min(xs)), float(max(xs)), y_lo, y_hi


def braille_chart(
    title: str, runs: Mapping[str, Points], *, width: int = 60, height: int = 8
) -> list[Text]:
    """`title`, then `height` rows of a line chart `width` cells wide with the y range on
    the left and the step range below; runs (name -> points) overlaid in COLOURS order.

    Each cell holds 2x4 dots, so the curve has 2*width x 4*height points of resolution.
    """
    out = [Text(title, style="bold")]
    bounds = _bounds(runs)
    if bounds is None:
        return [*out, Text("  (no data)", style="dim")]
    x_lo, x_hi, y_lo, y_hi = bounds
    cols, rows = width * 2, height * 4
    dots = [[0] * width for _ in range(height)]
    owner: list[list[int | None]] = [[None] * width for _ in range(height)]

    def pixel(x: float, y: float) -> tuple[int, int]:
        px = 0 if x_hi == x_lo else round((x - x_lo) / (x_hi - x_lo) * (cols - 1))
        py = round((y_hi - y) / (y_hi - y_lo) * (rows - 1))
        return px, py

    for index, pts in enumerate(runs.values()):
        pixels = [pixel(x, y) for x, y in pts]
        for (ax, ay), (bx, by) in zip(pixels, pixels[1:] or pixels, strict=False):
            n = max(abs(bx - ax), abs(by - ay), 1)
            for i in range(n + 1):
                px, py = round(ax + (bx - ax) * i / n), round(ay + (by - ay) * i / n)
                dots[py // 4][px // 2] |= _DOTS[px % 2][py % 4]
                owner[py // 4][px // 2] = index
    labels = list(axis_labels(y_hi, y_lo))
    pad = max(len(label) for label in labels)
    for r in range(height):
        label = labels[0] if r == 0 else labels[1] if r == height - 1 else ""
        line = Text(f"{label:>{pad}} ┤" if label else f"{'':>{pad}} │", style="dim")
        for c in range(width):
            who = owner[r][c]
            style = COLOURS[who % len(COLOURS)] if who is not None else ""
            line.append(chr(0x2800 + dots[r][c]), style=style)
        out.append(line)
    left, right = f"step {int(x_lo)}", f"{int(x_hi)}"
    axis = f"{'':>{pad}}  {left}{right:>{max(1, width - len(left))}}"
    out.append(Text(axis, style="dim"))
    return out


def legend(names: Sequence[str]) -> Text:
    """`━ run-a  ━ run-b` in the runs' colours."""
    text = Text()
    for i, name in enumerate(names):
        text.append("━ ", style=COLOURS[i % len(COLOURS)])
        text.append(name + "  ")
    return text


def axis_labels(high: float, low: float) -> tuple[str, str]:
    """The y axis's two ends at one precision, enough to tell them apart (`1.000`/`0.100`)."""
    magnitude = max(abs(high), abs(low))
    if magnitude >= 1e4 or magnitude < 1e-3:
        return f"{high:.2e}", f"{low:.2e}"
    span = high - low if high > low else magnitude
    digits = max(0, 2 - math.floor(math.log10(span)))
    return f"{high:.{digits}f}", f"{low:.{digits}f}"
