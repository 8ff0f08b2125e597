"""From a recipe file to a Plan: the I/O around the pure planner (files, plugins, paths)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vft.core.errors import PlanError, RecipeError
from vft.core.plan import Plan
from vft.core.planner import Target, plan
from vft.core.recipe import Recipe, load_recipe

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
SMOKE_RECIPE = ROOT / "examples" / "recipes" / "smoke.toml"  # `vft run` with no recipe


@dataclass(frozen=True)
class Prepared:
    recipe: Recipe
    plan: Plan
    backend: Any  # the Backend instance that will run the plan


def templates() -> dict[str, str]:
    return {
        name: (CONFIGS / "accelerate" / f"{name}.yaml").read_text() for name in ("zero2", "zero3")
    }


def prepare(
    recipe_path: str | Path,
    overrides: tuple[str, ...] = (),
    backend_name: str = "local",
    *,
    ports: dict[str, int] | None = None,
    check_paths: bool = True,
) -> Prepared:
    """Load, check and plan a recipe for one backend; every failure is a one-line UserError."""
    from vft.core.plugins import registry

    recipe = load_recipe(recipe_path, overrides)
    reg = registry()
    backend = reg.backend(backend_name)
    server = reg.server(recipe.inference.engine)
    options = _backend_options(recipe, reg, backend_name)
    if check_paths:
        check_recipe_paths(recipe)
    target = Target(
        backend=backend_name,
        capabilities=backend.capabilities,
        server=server,
        templates=templates(),
        accelerate_config=_user_accelerate_config(recipe),
        backend_options=options,
        ports=ports or {},
    )
    result = plan(recipe, target)
    unknown = sorted(set(recipe.backend) - set(reg.backends))
    if unknown:
        note = (
            f"[backend.{', backend.'.join(unknown)}] ignored: no such backend is installed "
            f"(installed: {', '.join(sorted(reg.backends))})"
        )
        result = replace(result, warnings=(*result.warnings, note))
    return Prepared(recipe, result, backend)


def _backend_options(recipe: Recipe, reg: Any, chosen: str) -> dict[str, Any]:
    """Validate every `[backend.X]` table whose backend is installed; return the chosen one's."""
    from pydantic import ValidationError

    chosen_options: dict[str, Any] = {}
    for name, table in recipe.backend.items():
        if name not in reg.backends:
            continue  # options for a backend not installed here: warned about, not checked
        model = reg.backends[name].cls.options_model
        if model is None:
            if table:
                raise RecipeError(f"backend.{name}", f"backend {name!r} takes no options")
            continue
        try:
            validated = model.model_validate(table).model_dump(mode="json")
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            key = ".".join(["backend", name, *map(str, err["loc"])])
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(model.model_fields)
                raise RecipeError(key, "unknown key", hint=f"allowed: {allowed}") from None
            raise RecipeError(key, err["msg"]) from None
        if name == chosen:
            chosen_options = validated
    if chosen not in recipe.backend and chosen in reg.backends:
        model = reg.backends[chosen].cls.options_model
        if model is not None:
            chosen_options = model().model_dump(mode="json")
    return chosen_options


def _user_accelerate_config(recipe: Recipe) -> str | None:
    ds = recipe.trainer.deepspeed
    if ds in ("zero2", "zero3"):
        return None
    path = Path(ds)
    if path.suffix not in (".yaml", ".yml", ".json"):
        raise RecipeError(
            "trainer.deepspeed",
            f"{ds!r} is not allowed: use zero2, zero3, or a path to an accelerate config (.yaml)",
        )
    if not path.is_file():
        raise RecipeError("trainer.deepspeed", f"accelerate config {ds!r} does not exist")
    return path.read_text()


def check_recipe_paths(recipe: Recipe) -> None:
    """Paths the recipe names must exist now, not after the GPUs are paid for."""
    script = recipe.trainer.script
    if script and not Path(script).is_file():
        raise PlanError(
            f"trainer.script: {script!r} does not exist (paths are relative to {Path.cwd().name}/)"
        )
    for item in recipe.environment.install:
        p = Path(item)
        if not (p / "pyproject.toml").is_file() and not (p / "setup.py").is_file():
            raise PlanError(
                f"environment.install: {item!r} is not a Python package folder "
                "(it needs a pyproject.toml); paths are relative to the current directory"
            )
    from vft.core.environments import check_environment

    check_environment(recipe)
