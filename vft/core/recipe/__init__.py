"""The recipe: the user's TOML, parsed into a validated, typed object (schema, loading, --set)."""

from vft.core.recipe.schema import (
    NAME_PATTERN,
    Environment,
    Inference,
    Logging,
    Model,
    Recipe,
    Resources,
    Run,
    Trainer,
    apply_overrides,
    load_recipe,
    parse_override,
    recipe_from_dict,
)

__all__ = [
    "NAME_PATTERN",
    "Environment",
    "Inference",
    "Logging",
    "Model",
    "Recipe",
    "Resources",
    "Run",
    "Trainer",
    "apply_overrides",
    "load_recipe",
    "parse_override",
    "recipe_from_dict",
]
