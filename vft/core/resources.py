"""The one place that reads vft's package data, through `importlib.resources` only.

A wheel install has no source checkout beside it, so `Path(__file__).parents[...]` finds
nothing there. pyproject.toml ships the repository's `configs/` as the package
`vft.configs` and `examples/recipes/` as `vft.recipes` (both installs, editable and
wheel); the starter recipe lives in `vft/data/`. Everything here works in either install
and imports nothing heavy.
"""

from __future__ import annotations

import atexit
import contextlib
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path

ACCELERATE_TEMPLATES = ("zero2", "zero3")
"""The accelerate configs that `trainer.deepspeed = "zero2"` / `"zero3"` name."""

SMOKE = "smoke"
"""The recipe `vft run` runs when given none."""

_KEEP = contextlib.ExitStack()  # temporary copies made by `as_file`, removed at exit
atexit.register(_KEEP.close)


def _configs() -> Traversable:
    return files("vft.configs")


def _recipes() -> Traversable:
    return files("vft.recipes")


def gpu_catalog_text() -> str:
    """The GPU catalog (configs/gpus.toml) as TOML text."""
    return (_configs() / "gpus.toml").read_text(encoding="utf-8")


def accelerate_template(name: str) -> str:
    """The accelerate config template `name` (configs/accelerate/NAME.yaml): zero2 or zero3."""
    if name not in ACCELERATE_TEMPLATES:
        raise ValueError(
            f"no accelerate template {name!r}; known: {', '.join(ACCELERATE_TEMPLATES)}"
        )
    return (_configs() / "accelerate" / f"{name}.yaml").read_text(encoding="utf-8")


def accelerate_templates() -> dict[str, str]:
    """Every accelerate template by name: what the planner's `Target.templates` takes."""
    return {name: accelerate_template(name) for name in ACCELERATE_TEMPLATES}


def recipe_names() -> list[str]:
    """The example recipes shipped with vft (examples/recipes/*.toml), by stem, sorted."""
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in _recipes().iterdir()
        if entry.is_file() and entry.name.endswith(".toml")
    )


def recipe(name: str) -> Traversable:
    """The shipped example recipe `name` (a stem such as "smoke" or "gsm8k").

    A Traversable, not always a real file: use `recipe_path` where a path is needed.
    """
    entry = _recipes() / f"{name}.toml"
    if not entry.is_file():
        raise FileNotFoundError(f"no example recipe {name!r}; shipped: {', '.join(recipe_names())}")
    return entry


def recipe_text(name: str) -> str:
    """The TOML text of the shipped example recipe `name`."""
    return recipe(name).read_text(encoding="utf-8")


def smoke_recipe() -> Traversable:
    """The CPU smoke recipe (examples/recipes/smoke.toml) that `vft run` runs with no RECIPE."""
    return recipe(SMOKE)


def recipe_file(name: str) -> Path:
    """A real filesystem path to the shipped recipe `name`, valid until the process exits.

    For code that takes a path (`load_recipe`, and `vft run` re-planning with the same
    path). In every ordinary install (editable, or a wheel unpacked into site-packages)
    this is the file itself; from a zipped install `as_file` makes a temporary copy, kept
    until exit, so relative paths inside the recipe would resolve against a temporary
    folder: the recipe run this way (smoke) has none.
    """
    return Path(_KEEP.enter_context(as_file(recipe(name))))


def smoke_recipe_file() -> Path:
    """`recipe_file("smoke")`: what `vft run` loads when given no RECIPE."""
    return recipe_file(SMOKE)


def starter_recipe_text() -> str:
    """The commented starter recipe that `vft init` writes (vft/data/starter.toml)."""
    return (files("vft") / "data" / "starter.toml").read_text(encoding="utf-8")
