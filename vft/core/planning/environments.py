"""Finding Verifiers environments, and what a plan can and cannot do with one.

Cheap by design (`vft plan` and `vft envs` call it): package metadata (through the cached
index of `vft.core.installed`), import specs and a look at a module's source text, never
importing an environment or verifiers itself.
What an environment *is* (its API, turns, tools, rewards) needs it imported: that is
`python -m vft.train.envs.describe ENV_ID --args JSON`, run in a subprocess, whose JSON
`EnvironmentFacts.from_dict` reads and `environment_problems` judges.

Where an environment comes from, in order: built into vft (`BUILTIN_ENVIRONMENTS`: the
smoke one and the tutorial's five, shipped as `vft.environments.*`), installed here
(any distribution whose top-level module is a Verifiers environment, editable installs
of any build backend included), or `environment.install` (installed before the run:
locally, or into the image of a remote backend).
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vft.core.errors import PlanError
from vft.core.installed import Distribution, installed
from vft.core.recipe.schema import Recipe

PROJECT_ENVIRONMENTS = Path(__file__).resolve().parents[3] / "environments"

#: Environments that ship inside vft: id -> module. None of them needs an install line.
BUILTIN_ENVIRONMENTS: dict[str, str] = {
    "vft_smoke": "vft.train.smoke_env",
    "gsm8k": "vft.environments.gsm8k",
    "reverse_text": "vft.environments.reverse_text",
    "continuation_quality": "vft.environments.continuation_quality",
    "wordle": "vft.environments.wordle",
    "math_python": "vft.environments.math_python",
}

#: verifiers versions vft trains with (the classic API and verifiers.v1 both)
VERIFIERS_RANGE = ">=0.3.1,<0.4"

_NOT_ENVIRONMENTS = {"verifiers", "vft"}
_IMPORTS_VERIFIERS = re.compile(r"^\s*(?:from|import)\s+verifiers\b", re.MULTILINE)
_ENV_MARKERS = re.compile(r"\bload_environment\b|\bTaskset\b")


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


def normalize_id(env_id: str) -> str:
    """`owner/name@version` (a hub id) -> `name`."""
    return env_id.rsplit("/", 1)[-1].split("@", 1)[0]


def module_names(env_id: str) -> list[str]:
    """Module names an environment id may be installed under (`reverse-text` -> reverse_text)."""
    base = normalize_id(env_id).replace("-", "_")
    return [base, f"vf_{base}"]


def _find_spec(name: str) -> Any:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def is_installed(env_id: str) -> bool:
    if env_id in BUILTIN_ENVIRONMENTS:
        return True
    return any(_find_spec(m) is not None for m in module_names(env_id))


def _top_level_modules(dist: Distribution) -> list[str]:
    """Its modules from the index, plus, for an editable install, what its `.pth` files
    reach now (setuptools' finder maps names, a path `.pth` a folder whose contents may
    have changed since the index was made)."""
    modules = set(dist.modules)
    if dist.editable:
        base = dist.name.lower().replace("-", "_").replace(".", "_")
        for candidate in (base, f"vf_{base}", base.removeprefix("vf_")):
            if _find_spec(candidate) is not None:
                modules.add(candidate)
        # hatchling, flit, pdm and setuptools' compat mode put a plain folder on sys.path
        for root in (Path(line) for line in dist.pth_lines):
            for child in root.iterdir() if root.is_dir() else ():
                name = child.name.removesuffix(".py")
                if not name.isidentifier() or name.startswith(("_", "test")):
                    continue
                if (child / "__init__.py").is_file() or child.suffix == ".py":
                    modules.add(name)
    return sorted(m for m in modules if m.isidentifier())


def _module_text(module: str) -> str:
    spec = _find_spec(module)
    origin = getattr(spec, "origin", None)
    if not origin or not origin.endswith(".py"):
        return ""
    try:
        return Path(origin).read_text(errors="replace")[:200_000]
    except OSError:
        return ""


def _looks_like_environment(module: str, requires_verifiers: bool) -> bool:
    text = _module_text(module)
    if not text:
        return False
    if requires_verifiers:
        return True
    return bool(_IMPORTS_VERIFIERS.search(text)) or bool(_ENV_MARKERS.search(text))


def installed_environments(only: Iterable[str] | None = None) -> list[EnvironmentInfo]:
    """Built-in environments, then installed ones: distributions that depend on
    `verifiers`, or whose top-level module imports it or defines `load_environment`.
    `only`: look at these modules alone (reading every module's source is the slow part)."""
    wanted = None if only is None else set(only)
    found = [EnvironmentInfo(k, v, "builtin") for k, v in BUILTIN_ENVIRONMENTS.items()]
    seen = set(BUILTIN_ENVIRONMENTS)
    for dist in installed().distributions:
        name = dist.name
        if not name or name.lower() in _NOT_ENVIRONMENTS:
            continue
        requires = "verifiers" in dist.requires
        for module in _top_level_modules(dist):
            env_id = module.removeprefix("vf_")
            if env_id in seen or module in _NOT_ENVIRONMENTS:
                continue
            if wanted is not None and module not in wanted:
                continue
            if not _looks_like_environment(module, requires):
                continue
            seen.add(env_id)
            found.append(EnvironmentInfo(env_id, module, "installed", dist.version))
    return sorted(found, key=lambda e: (e.source != "builtin", e.id))


def project_environments() -> list[EnvironmentInfo]:
    """Environment packages in this project's `environments/` folder (the built-ins'
    sources), installed or not."""
    if not PROJECT_ENVIRONMENTS.is_dir():
        return []
    out = []
    for folder in sorted(PROJECT_ENVIRONMENTS.iterdir()):
        if (folder / "pyproject.toml").is_file():
            source = (
                "builtin"
                if folder.name in BUILTIN_ENVIRONMENTS
                else "installed"
                if is_installed(folder.name)
                else "project (not installed)"
            )
            module = BUILTIN_ENVIRONMENTS.get(folder.name, folder.name)
            out.append(EnvironmentInfo(folder.name, module, source, path=str(folder)))
    return out


def known_ids() -> list[str]:
    ids = {e.id for e in installed_environments()} | {e.id for e in project_environments()}
    return sorted(ids)


def suggest(env_id: str, ids: Iterable[str] | None = None) -> str:
    """` (did you mean 'gsm8k'?)` for a near miss among known ids, else ''."""
    pool = list(ids) if ids is not None else known_ids()
    key = normalize_id(env_id).replace("-", "_").lower()
    by_key = {i.replace("-", "_").lower(): i for i in pool}
    close = difflib.get_close_matches(key, list(by_key), n=3, cutoff=0.6)
    if not close:
        return ""
    names = " or ".join(repr(by_key[c]) for c in close)
    return f" (did you mean {names}?)"


def _install_provides(env_id: str, install: Iterable[str]) -> str | None:
    wanted = set(module_names(env_id))
    for item in install:
        if Path(item).name.replace("-", "_") in wanted:
            return item
    return None


def environment_files(env_id: str, install: Iterable[str] = ()) -> list[Path]:
    """The source files of an environment (its package folder, or its `install` folder),
    for a cache key that changes when the environment does; [] when it cannot be found."""
    item = _install_provides(env_id, install)
    roots: list[Path] = [Path(item)] if item is not None else []
    if not roots:
        names = [BUILTIN_ENVIRONMENTS[env_id]] if env_id in BUILTIN_ENVIRONMENTS else []
        for name in [*names, *module_names(env_id)]:
            spec = _find_spec(name)
            if spec is not None and spec.origin:
                origin = Path(spec.origin)
                roots = [origin.parent if origin.name == "__init__.py" else origin]
                break
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += sorted(
                p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            )
    return files


def environment_source(recipe: Recipe, *, remote: bool = False) -> str:
    """Where the recipe's environment will come from, for `vft plan` to show:
    `builtin`, `installed (VERSION)`, `environment.install (PATH)`, or, for a remote
    backend, `installed in the image (PATH)`."""
    env = recipe.environment
    if env.id in BUILTIN_ENVIRONMENTS:
        return "builtin"
    item = _install_provides(env.id, env.install)
    if item is not None:
        return f"installed in the image ({item})" if remote else f"environment.install ({item})"
    names = module_names(env.id)
    for e in installed_environments(only=[env.id, f"vf_{env.id}", *names]):
        if e.id == env.id or e.module in names:
            return f"installed ({e.version})" if e.version else "installed"
    if is_installed(env.id):
        return "installed"
    return "missing"


def check_environment(recipe: Recipe, *, remote: bool = False) -> None:
    """Refuse, at plan time, an environment that neither is available nor will be.

    `remote`: the run happens elsewhere (e.g. Modal), where `environment.install` puts it
    into the image; it need not be installed here."""
    env_id = recipe.environment.id
    if env_id in BUILTIN_ENVIRONMENTS or _install_provides(env_id, recipe.environment.install):
        return
    if is_installed(env_id):
        return
    local = PROJECT_ENVIRONMENTS / normalize_id(env_id).replace("-", "_")
    if local.is_dir() and (local / "pyproject.toml").is_file():
        suggestion = f"environments/{local.name}"
    else:
        suggestion = f"path/to/{env_id}"
    hint = suggest(env_id)
    raise PlanError(
        f"environment.id: {env_id!r} is not installed{hint}; add "
        f'install = ["{suggestion}"] to [environment] (or pip install it)'
    )
