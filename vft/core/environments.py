"""Finding Verifiers environments: installed packages, the project's `environments/` folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from vft.core.errors import PlanError
from vft.core.recipe import Recipe

PROJECT_ENVIRONMENTS = Path(__file__).resolve().parents[2] / "environments"


def module_names(env_id: str) -> list[str]:
    """Module names an environment id may be installed under (`reverse-text` -> reverse_text)."""
    base = env_id.replace("-", "_")
    return [base, f"vf_{base}"]


def is_installed(env_id: str) -> bool:
    return any(importlib.util.find_spec(m) is not None for m in module_names(env_id))


def check_environment(recipe: Recipe) -> None:
    """Refuse, at plan time, an environment that neither is installed nor will be."""
    env_id = recipe.environment.id
    if is_installed(env_id):
        return
    wanted = {Path(p).name.replace("-", "_") for p in recipe.environment.install}
    if set(module_names(env_id)) & wanted:
        return
    local = PROJECT_ENVIRONMENTS / env_id.replace("-", "_")
    suggestion = f"environments/{local.name}" if local.is_dir() else f"path/to/{env_id}"
    raise PlanError(
        f"environment.id: {env_id!r} is not installed; add "
        f'install = ["{suggestion}"] to [environment] (or pip install it)'
    )
