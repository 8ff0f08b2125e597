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
                    f"{_shown(name)} is ambiguous: write one of {', '.join(choices)}",
                )
        if folded in self.aliases:
            return self.types[self.aliases[folded]]
        raise RecipeError(
            "resources.gpus",
            f"unknown GPU type {_shown(name)}; known: {', '.join(self.types)}",
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


#: ASCII digits only: `\d` would also take Arabic-Indic or full-width digits as a count
_COUNT = re.compile(r"[0-9]+", re.ASCII)
_MEMORY = re.compile(r"[0-9]+\s*gb", re.ASCII | re.IGNORECASE)
#: the most GPUs one machine can hold, with room to spare (the largest hold 16)
MAX_GPUS_PER_NODE = 64


def _shown(text: str) -> str:
    """A user's token in an error line: quoted, escaped, shortened."""
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _count(token: str, raw: str) -> int:
    """The COUNT of TYPE:COUNT, refused before int() when absurd (a 10,000-digit count
    would take int() a while and the planner all memory)."""
    digits = token.lstrip("0") or "0"
    if len(digits) > 4 or int(digits) > MAX_GPUS_PER_NODE:
        raise RecipeError(
            "resources.gpus",
            f"count {_shown(token)} in {_shown(raw)} is too many: at most {MAX_GPUS_PER_NODE} "
            "GPUs per node; for more, set resources.nodes",
        )
    if int(digits) < 1:
        raise RecipeError("resources.gpus", f"count in {_shown(raw)} must be at least 1")
    return int(digits)


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
    if len(parts) > 1 and _COUNT.fullmatch(parts[-1]):
        count = _count(parts[-1], raw)
        parts = parts[:-1]
    elif len(parts) > 1 and not _MEMORY.fullmatch(parts[-1]):
        raise RecipeError(
            "resources.gpus",
            f"count {_shown(parts[-1])} in {_shown(raw)} is not a whole number (ASCII digits); "
            "write TYPE:COUNT such as 'H100:8'",
        )
    name = ":".join(parts)
    return GpuRequest(catalog().lookup(name), count)
