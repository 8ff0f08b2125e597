"""Finding Verifiers environments: built in, installed packages, the project's `environments/`.

Cheap by design (`vft plan` and `vft envs` call it): package metadata and import specs
only, never importing an environment or verifiers itself.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vft.core.errors import PlanError
from vft.core.recipe.schema import Recipe

PROJECT_ENVIRONMENTS = Path(__file__).resolve().parents[3] / "environments"

# Environments that ship inside vft: id -> module. The smoke recipe's needs no install.
BUILTIN_ENVIRONMENTS: dict[str, str] = {"vft_smoke": "vft.train.smoke_env"}


@dataclass(frozen=True)
class EnvironmentInfo:
    """One environment `vft envs` lists."""

    id: str
    module: str
    source: str  # "builtin" | "installed" | "project (not installed)"
    version: str | None = None
    path: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


def module_names(env_id: str) -> list[str]:
    """Module names an environment id may be installed under (`reverse-text` -> reverse_text)."""
    base = env_id.replace("-", "_")
    return [base, f"vf_{base}"]


def is_installed(env_id: str) -> bool:
    if env_id in BUILTIN_ENVIRONMENTS:
        return True
    return any(importlib.util.find_spec(m) is not None for m in module_names(env_id))


def installed_environments() -> list[EnvironmentInfo]:
    """Built-in environments, then installed distributions that depend on `verifiers`."""
    found = [EnvironmentInfo(k, v, "builtin") for k, v in BUILTIN_ENVIRONMENTS.items()]
    seen = set(BUILTIN_ENVIRONMENTS)
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] or ""
        requires = dist.requires or []
        if name.lower() in ("verifiers", "vft") or not any(
            _requirement_name(r) == "verifiers" for r in requires
        ):
            continue
        for module in _top_level_modules(dist):
            env_id = module.removeprefix("vf_")
            if env_id in seen:
                continue
            seen.add(env_id)
            found.append(EnvironmentInfo(env_id, module, "installed", dist.version))
    return sorted(found, key=lambda e: (e.source != "builtin", e.id))


def project_environments() -> list[EnvironmentInfo]:
    """Environment packages in this project's `environments/` folder, installed or not."""
    if not PROJECT_ENVIRONMENTS.is_dir():
        return []
    out = []
    for folder in sorted(PROJECT_ENVIRONMENTS.iterdir()):
        if (folder / "pyproject.toml").is_file():
            source = "installed" if is_installed(folder.name) else "project (not installed)"
            out.append(EnvironmentInfo(folder.name, folder.name, source, path=str(folder)))
    return out


def _requirement_name(requirement: str) -> str:
    name = requirement.split(";")[0].strip()
    for sep in "<>=!~[ (":
        name = name.split(sep)[0]
    return name.strip().lower().replace("_", "-")


def _top_level_modules(dist: importlib.metadata.Distribution) -> list[str]:
    text = dist.read_text("top_level.txt")
    if text:
        return [m for m in text.split() if m and not m.startswith("_")]
    modules = set()
    for f in dist.files or ():
        top = f.parts[0]
        if top.endswith((".dist-info", ".egg-info", ".pth")) or top.startswith(("_", "..")):
            if top.endswith(".pth") and top.startswith("__editable__"):
                modules.add(_editable_module(dist, f))
            continue
        modules.add(top.removesuffix(".py"))
    return sorted(m for m in modules if m and m.isidentifier())


def _editable_module(dist: importlib.metadata.Distribution, pth: Any) -> str:
    """An editable install's module name, from `__editable__.<name>-<ver>.pth`."""
    return pth.parts[0].removeprefix("__editable__.").split("-")[0].replace("-", "_")


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
