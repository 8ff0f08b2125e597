"""Sweeps: a grid of recipe values, one ordinary run per point, and the record that ties
them together (`vft sweep`, `vft runs --sweep`)."""

from vft.core.sweeps.grid import Axis, Point, axes_of, expand, parse_grid_option
from vft.core.sweeps.names import point_names
from vft.core.sweeps.record import (
    list_sweeps,
    read_sweep,
    sweep_attempt_refs,
    sweep_path,
    sweep_run_names,
)
from vft.core.sweeps.rewards import Rewards, rewards

__all__ = [
    "Axis",
    "Point",
    "Rewards",
    "axes_of",
    "expand",
    "list_sweeps",
    "parse_grid_option",
    "point_names",
    "read_sweep",
    "rewards",
    "sweep_attempt_refs",
    "sweep_path",
    "sweep_run_names",
]
