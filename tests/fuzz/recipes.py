"""Hostile recipe material for the fuzz suite: values, structures, texts, bytes, `--set`s.

Everything here is something a user could type or a file could hold; the suite's claim
is that all of it ends as a plan or as one line, never as a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from vft.core.errors import UserError
from vft.core.recipe import Recipe
from vft.core.recipe.tables import Table

#: reproducible in CI: the same examples on every run, no example database
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

BASE: dict[str, Any] = {
    "name": "fuzz",
    "model": {"name": "vft-tiny"},
    "environment": {"id": "vft_smoke"},
    "resources": {"gpus": "cpu"},
    "trainer": {"per_device_train_batch_size": 4, "num_generations": 4},
}


def known_keys(model: type[Table] = Recipe, prefix: str = "") -> list[str]:
    """Every key of the recipe, dotted (`trainer.max_steps`), sections included."""
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, Table):
            keys += known_keys(ann, f"{prefix}{name}.")
    return keys


KEYS = known_keys()
#: keys that hold a value rather than a table
LEAVES = [k for k in KEYS if not any(other.startswith(f"{k}.") for other in KEYS)]

#: the inputs known to have crashed or been accepted before, and their neighbours
NASTY_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\n",
    "line\nbreak",
    "\u202e",  # right-to-left override
    "\ufeff",
    "H100:\u0663",  # Arabic-Indic three
    "H100:\uff13",  # full-width three
    "H100:9999",
    "H100:" + "9" * 5000,
    "H100:0",
    "H100:-1",
    "cpu",
    "os",
    "json",
    "sys",
    "foo.bar",
    "../../x",
    "/etc/passwd",
    "owner/name@1.0",
    "class",
    "vft",
    "a" * 300,
    "a" * 5000,
    "latest",
    "zero3",
    "missing.yaml",
    "inf",
    "nan",
    "true",
    "1e999",
]
HUGE_INTS = [0, -1, 1, 2**31, 2**63, 2**64 + 1, -(2**63), 10**30, 10**4000]
ODD_FLOATS = [float("inf"), float("-inf"), float("nan"), 1e308, -0.0, 5e-324]

text = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(NASTY_TEXT)
scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE_INTS),
    st.floats(),
    st.sampled_from(ODD_FLOATS),
    text,
    st.datetimes(),
    st.dates(),
    st.times(),
)
hostile = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
#: values a recipe could well hold, so that half the examples get as far as the planner
plausible = st.one_of(
    st.integers(-1, 70),
    st.floats(0, 2),
    st.booleans(),
    st.sampled_from(["cpu", "H100:2", "L4", "zero2", "zero3", "vft_smoke", "latest", "m/x", "x"]),
)
values = plausible | hostile
tables = st.dictionaries(text | st.sampled_from(KEYS), values, max_size=6)

#: pieces of TOML, good and bad, for texts no TOML writer would produce
TOKENS = [
    "name",
    "model",
    "trainer",
    "resources",
    "environment",
    " = ",
    "=",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    ",",
    ".",
    '"',
    "'",
    '"""',
    "\n",
    "#",
    "true",
    "inf",
    "nan",
    "-0",
    "0x1F",
    "1e999",
    "1979-05-27T07:32:00Z",
    "\u0663",
    "\uff13",
    "\\u0000",
    "\\",
    "gpus",
    "H100:8",
    "max_steps",
]
toml_texts = st.lists(st.sampled_from(TOKENS) | text, max_size=40).map("".join)

#: `--set` values: TOML fragments and plain words
override_values = st.one_of(
    plausible.map(lambda v: str(v).lower() if isinstance(v, bool) else str(v)),
    text,
    st.sampled_from(["[1, 2", "{a = 1}", "[[[]]]", '"x"', "1e999", "-inf", "0o7", "true"]),
    st.integers().map(str),
    st.floats().map(repr),
)


def fitting(key: str) -> st.SearchStrategy[Any]:
    """A value of the key's own type, in a range that often plans (the default's kind)."""
    model: Any = Recipe
    *parents, leaf = key.split(".")
    for part in parents:
        model = model.model_fields[part].annotation
    field = model.model_fields[leaf]
    default = field.get_default(call_default_factory=True)
    if isinstance(default, bool) or (default is None and "bool" in str(field.annotation)):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(1, 64)
    if isinstance(default, float):
        return st.floats(0.01, 1.0)
    return st.just(default) if isinstance(default, str) else plausible


def _toml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


_plausible_set = st.sampled_from(LEAVES).flatmap(
    lambda k: fitting(k).map(lambda v: f"{k}={_toml(v)}")
)
overrides = st.one_of(
    _plausible_set,
    _plausible_set,
    _plausible_set,
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), override_values),
    st.builds(lambda k, v: f"{k}={v}", text, override_values),
    text,
)


def nested(depth: int, kind: str) -> str:
    """An array or inline table nested `depth` deep, as TOML text."""
    if kind == "array":
        return "[" * depth + "]" * depth
    return "{a = " * depth + "1" + "}" * depth


def write_recipe(folder: Path, data: dict[str, Any]) -> Path:
    path = folder / "r.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def with_value(key: str, value: Any) -> dict[str, Any]:
    """BASE with one dotted key set (tables on the way made or replaced)."""
    data: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in BASE.items()}
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[leaf] = value
    return data


def assert_one_line(exc: UserError) -> None:
    """What the user sees is one line: no line break, of a length a terminal shows."""
    line = exc.line()
    assert line.strip(), "an empty error"
    assert "\n" not in line and "\r" not in line, line
    assert len(line) <= 1000, f"{len(line)} characters: {line[:200]}"
