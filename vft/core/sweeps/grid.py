"""A sweep's grid: `--grid KEY=V1,V2` and the recipe's `[sweep]` table, checked and expanded.

Values are TOML, as in `--set` (`1e-6`, `true`, `"a,b"`, `[1, 2]`); a value that is not
TOML is a bare string. Every key must name a recipe field (one line with a did-you-mean
when it does not), so a typo fails before anything is planned, let alone paid for.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vft.core.errors import RecipeError
from vft.core.recipe import Recipe
from vft.core.recipe.tables import Table

#: more points than this is a typo (a list pasted into the wrong key), not a sweep
MAX_POINTS = 256
#: keys a point may not vary: the sweep names the runs and they share one output folder
FIXED_KEYS = {
    "name": "each point's run name is made from its values",
    "sweep": "a point is one run",
    "run.output_dir": "the points of a sweep share one output folder (use --set)",
}
_KEY = re.compile(r"^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*$")


@dataclass(frozen=True)
class Axis:
    """One dotted recipe key and the values the sweep tries for it, in the order given."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Point:
    """One run of the grid: a value for every axis, in the axes' order."""

    values: tuple[tuple[str, Any], ...]

    def overrides(self) -> tuple[str, ...]:
        """The `--set` strings that make the recipe this point."""
        return tuple(f"{key}={toml_value(value)}" for key, value in self.values)


def parse_grid_option(item: str) -> Axis:
    """`trainer.beta=0,0.04` -> Axis('trainer.beta', (0, 0.04)); a bad item is one line."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not _KEY.match(key) or not raw.strip():
        raise RecipeError(
            "--grid",
            f"{item[:100]!r} is not KEY.PATH=V1,V2,... (e.g. trainer.learning_rate=1e-6,3e-6)",
        )
    return Axis(key, _values(key, raw.strip()))


def _values(key: str, raw: str) -> tuple[Any, ...]:
    """Comma-separated TOML values; when the whole is not TOML, each item on its own, and
    an item that is not TOML is a bare string (`zero2,zero3`)."""
    try:
        return tuple(tomllib.loads(f"v = [{raw}]")["v"])
    except tomllib.TOMLDecodeError:
        pass
    except RecursionError:
        raise RecipeError("--grid", f"{key}: values nested too deeply") from None
    values = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            raise RecipeError("--grid", f"{key}: an empty value in {raw[:100]!r}")
        try:
            values.append(tomllib.loads(f"v = {part}")["v"])
        except tomllib.TOMLDecodeError:
            values.append(part)
    return tuple(values)


def axes_of(table: Mapping[str, Sequence[Any]], options: Sequence[str]) -> list[Axis]:
    """The recipe's `[sweep]` axes, then the `--grid` options' (one for a key the table
    has replaces its values there); every key checked against the recipe's schema."""
    axes: dict[str, Axis] = {}
    for key, values in table.items():
        if not _KEY.match(key):
            raise RecipeError("sweep", f"{key[:100]!r} is not a dotted recipe key")
        axes[key] = Axis(key, tuple(values))
    given: set[str] = set()
    for item in options:
        axis = parse_grid_option(item)
        if axis.key in given:
            raise RecipeError("--grid", f"{axis.key} is given twice; give its values once")
        given.add(axis.key)
        axes[axis.key] = axis
    for axis in axes.values():
        where = "--grid" if axis.key in given else "sweep"
        check_key(axis.key, where)
        if not axis.values:
            raise RecipeError(where, f"{axis.key}: no values to try")
        for i, value in enumerate(axis.values):
            if any(_same(value, other) for other in axis.values[:i]):
                raise RecipeError(
                    where, f"{axis.key}: the value {toml_value(value)} is given twice"
                )
    return list(axes.values())


def _same(a: Any, b: Any) -> bool:
    """The same value for a recipe field: 0 and 0.0 are (a float field takes both); true
    and 1 are not."""
    return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)


def expand(axes: Sequence[Axis]) -> list[Point]:
    """Every combination, the first axis varying slowest (the order a reader expects)."""
    total = math.prod(len(a.values) for a in axes)
    if total > MAX_POINTS:
        sizes = " x ".join(str(len(a.values)) for a in axes)
        raise RecipeError("--grid", f"{sizes} = {total} points; a sweep has at most {MAX_POINTS}")
    combos = itertools.product(*(a.values for a in axes))
    return [Point(tuple(zip((a.key for a in axes), combo, strict=True))) for combo in combos]


def check_override_conflicts(axes: Sequence[Axis], overrides: Sequence[str]) -> None:
    """A `--set` of a key the grid varies would be overwritten by every point: refused."""
    grid = {a.key for a in axes}
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key in grid:
            raise RecipeError(
                "--set", f"{key} is also a grid key; give its values with --grid only"
            )


def check_key(key: str, where: str) -> None:
    """`key` must name a recipe field (or lie under a free-form table such as
    environment.args or backend.modal); otherwise one line, with the closest key."""
    if key in FIXED_KEYS:
        raise RecipeError(where, f"{key} cannot be swept: {FIXED_KEYS[key]}")
    model: type[Table] = Recipe
    parts = key.split(".")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            break
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, Table):
            model = ann
            if i == len(parts) - 1:
                raise RecipeError(where, f"{key} is a table; sweep one of its keys")
            continue
        if i == len(parts) - 1 or _free_form(ann):
            return  # a field, or a key inside a dict the schema leaves open
        break
    known = recipe_keys()
    ends = [k for k in known if k.endswith("." + key)]
    close = ends or difflib.get_close_matches(key[:100], known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else "see `vft schema` for the recipe's keys"
    raise RecipeError(where, f"{key[:100]!r} is not a recipe key", hint=hint)


def _free_form(annotation: Any) -> bool:
    """A dict field (environment.args, backend): the keys below it are the user's."""
    return getattr(annotation, "__origin__", None) is dict


def recipe_keys() -> list[str]:
    """Every dotted key of the recipe schema (`trainer.learning_rate`, ...)."""
    found: list[str] = []

    def walk(model: type[Table], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, Table):
                walk(ann, f"{prefix}{name}.")
            elif f"{prefix}{name}" not in FIXED_KEYS:
                found.append(f"{prefix}{name}")

    walk(Recipe, "")
    return found


def toml_value(value: Any) -> str:
    """A value as TOML text (what `--set KEY=TEXT` reads back as the same value)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_string(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return _toml_string(str(value))  # a TOML date or time: its text


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, but not its surrogate pairs (so
    non-ASCII stays as is) and TOML also escapes DEL."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
