"""The GPU catalog (configs/gpus.toml) and the `TYPE:COUNT` / `cpu` parser."""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass

from vft.core import resources
from vft.core.errors import RecipeError


@dataclass(frozen=True)
class GpuType:
    """One GPU model as the catalog describes it."""

    name: str
    memory_gib: float
    usd_per_hour: float


@dataclass(frozen=True)
class GpuRequest:
    """What `resources.gpus` asks for on each node; `type` is None for the CPU run."""

    type: GpuType | None
    count: int

    @property
    def is_cpu(self) -> bool:
        return self.type is None

    def __str__(self) -> str:
        return "cpu" if self.type is None else f"{self.type.name}:{self.count}"


@dataclass(frozen=True)
class Catalog:
    types: dict[str, GpuType]
    aliases: dict[str, str]
    ambiguous: dict[str, list[str]]

    def lookup(self, name: str) -> GpuType:
        """The GPU type for a user-written name, or a RecipeError that lists the choices."""
        key = name.strip()
        if key in self.types:
            return self.types[key]
        folded = key.lower()
        for amb, choices in self.ambiguous.items():
            if folded == amb.lower():
                raise RecipeError(
                    "resources.gpus",
                    f"{name!r} is ambiguous: write one of {', '.join(choices)}",
                )
        if folded in self.aliases:
            return self.types[self.aliases[folded]]
        raise RecipeError(
            "resources.gpus",
            f"unknown GPU type {name!r}; known: {', '.join(self.types)}",
        )


@functools.cache
def catalog() -> Catalog:
    """Load the catalog once per process (package data: works from a wheel too)."""
    data = tomllib.loads(resources.gpu_catalog_text())
    types: dict[str, GpuType] = {}
    aliases: dict[str, str] = {}
    for name, row in data["gpu"].items():
        types[name] = GpuType(name, float(row["memory_gib"]), float(row["usd_per_hour"]))
        aliases[name.lower()] = name
        for alias in row.get("aliases", []):
            aliases[alias.lower()] = name
    return Catalog(types, aliases, dict(data.get("ambiguous", {})))


_COUNT = re.compile(r"^\d+$")


def parse_gpus(text: str) -> GpuRequest:
    """Parse `H100:8`, `h100`, `A100-80GB:2`, `A100:80GB:2` or `cpu`.

    The error names the token that was not understood.
    """
    raw = str(text).strip()
    if raw.lower() == "cpu":
        return GpuRequest(None, 0)
    if not raw:
        raise RecipeError("resources.gpus", "is empty; write TYPE:COUNT such as 'H100:8', or 'cpu'")
    parts = raw.split(":")
    count = 1
    if len(parts) > 1 and _COUNT.match(parts[-1]):
        count = int(parts[-1])
        parts = parts[:-1]
    elif len(parts) > 1 and not re.match(r"^\d+\s*gb$", parts[-1], re.I):
        raise RecipeError(
            "resources.gpus",
            f"count {parts[-1]!r} in {raw!r} is not a whole number; write TYPE:COUNT such as 'H100:8'",
        )
    if count < 1:
        raise RecipeError("resources.gpus", f"count in {raw!r} must be at least 1")
    name = ":".join(parts)
    return GpuRequest(catalog().lookup(name), count)
