"""The terminal charts of `vft status` and `vft plot` (vft/cli/charts.py): where the dots land."""

from __future__ import annotations

from vft.cli.charts import COLOURS, braille_chart, legend, sparkline


def dots(line) -> str:
    """The chart cells of a row (after the `┤`/`│` axis)."""
    return line.plain.split("┤" if "┤" in line.plain else "│", 1)[1]


def test_sparkline_scales_between_min_and_max_and_keeps_the_last_values():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5]) == "▄▄▄"  # flat: the middle
    assert sparkline([9, 0, 7, 0], width=2) == "█▁"  # the last two, scaled on their own
    assert sparkline([]) == ""


def test_a_rising_line_goes_from_bottom_left_to_top_right():
    lines = braille_chart("reward", {"a": [(1, 0.0), (10, 1.0)]}, width=10, height=4)
    assert lines[0].plain == "reward"
    rows = [dots(line) for line in lines[1:5]]
    assert rows[0][-1] != "\u2800" and rows[0][0] == "\u2800"  # top row: only the right end
    assert rows[3][0] != "\u2800" and rows[3][-1] == "\u2800"  # bottom row: only the left end
    assert lines[1].plain.startswith("1.00 ┤") and lines[4].plain.startswith("0.00 ┤")
    assert lines[5].plain.split() == ["step", "1", "10"]


def test_runs_are_overlaid_in_their_own_colours():
    runs = {"a": [(1, 0.0), (5, 0.0)], "b": [(1, 1.0), (5, 1.0)]}
    lines = braille_chart("r", runs, width=8, height=2)
    styles = {str(span.style) for line in lines[1:3] for span in line.spans}
    assert {COLOURS[0], COLOURS[1]} <= styles
    assert legend(["a", "b"]).plain == "━ a  ━ b  "


def test_one_point_and_no_points():
    lines = braille_chart("kl", {"a": [(3, 0.5)]}, width=4, height=2)
    assert sum(ch != "\u2800" for line in lines[1:3] for ch in dots(line)) == 1
    assert [line.plain for line in braille_chart("kl", {"a": []})] == ["kl", "  (no data)"]
