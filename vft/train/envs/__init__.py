"""Verifiers environments for the trainer: both APIs, one interface.

    module = find_module(env_id)        # built in (vft.environments.*), else installed
    api = detect(module)                # "v1" (exports a vf.Taskset / vf.Env) | "legacy"
    adapter = load(env_id, args)        # base.Adapter: facts, rows, episodes, scores

Importing this package imports no verifiers; `load` does.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from vft.core.planning.environments import BUILTIN_ENVIRONMENTS, PROJECT_ENVIRONMENTS, module_names
from vft.train.envs.base import (
    Adapter,
    Api,
    EnvironmentCodeError,
    InferenceServerError,
    Result,
    Row,
    Server,
    find_environment_error,
    location,
)

__all__ = [
    "Adapter",
    "Api",
    "EnvironmentCodeError",
    "EnvironmentNotFound",
    "InferenceServerError",
    "Result",
    "Row",
    "Server",
    "detect",
    "find_environment_error",
    "find_module",
    "load",
]


class EnvironmentNotFound(ModuleNotFoundError):
    """No module for the id: neither built in nor installed."""


def _import_builtin(module_name: str) -> ModuleType:
    """A built-in environment, also from a checkout whose editable install predates it.

    `vft.environments.NAME` ships from `environments/NAME/NAME` (pyproject's package-dir);
    an editable install made before that mapping cannot find it: load it from there.
    """
    if module_name in sys.modules:
        return sys.modules[module_name]
    parent = sys.modules.get("vft.environments")
    ours = module_name.startswith("vft.environments.")
    if not ours or parent is None or not getattr(parent, "_vft_fallback", False):
        try:
            return importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not ours or exc.name not in (
                "vft.environments",
                module_name,
            ):
                raise
    name = module_name.rsplit(".", 1)[1]
    folder = PROJECT_ENVIRONMENTS / name / name
    if not (folder / "__init__.py").is_file():
        raise EnvironmentNotFound(f"built-in environment {name!r} is missing from this install")
    if "vft.environments" not in sys.modules:
        spec0 = importlib.util.spec_from_file_location(
            "vft.environments",
            PROJECT_ENVIRONMENTS / "__init__.py",
            submodule_search_locations=[],
        )
        assert spec0 is not None and spec0.loader is not None
        pkg = importlib.util.module_from_spec(spec0)
        pkg._vft_fallback = True  # type: ignore[attr-defined]
        sys.modules["vft.environments"] = pkg
        spec0.loader.exec_module(pkg)
    spec = importlib.util.spec_from_file_location(
        module_name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def find_module(env_id: str) -> ModuleType:
    """Import the environment's module: built in, else installed under one of its names.

    Raises EnvironmentNotFound when there is none, EnvironmentCodeError when the module is
    there but raises on import (its own code, or a dependency it lacks)."""
    if env_id in BUILTIN_ENVIRONMENTS:
        name = BUILTIN_ENVIRONMENTS[env_id]
        try:
            return _import_builtin(name)
        except EnvironmentNotFound:
            raise
        except Exception as exc:
            raise EnvironmentCodeError(env_id, exc, location(exc)) from exc
    tried = []
    for name in module_names(env_id):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            tried.append(name)
            continue
        try:
            return importlib.import_module(name)
        except Exception as exc:
            origin = spec.origin or ""
            roots = [str(Path(origin).parent)] if origin else []
            unsupported = _unsupported_verifiers(exc)
            if unsupported is not None:
                raise EnvironmentCodeError(
                    env_id, RuntimeError(unsupported), location(exc, roots)
                ) from exc
            raise EnvironmentCodeError(env_id, exc, location(exc, roots)) from exc
    raise EnvironmentNotFound(
        f"environment {env_id!r} is not installed (no module {' or '.join(tried)})"
    )


def _unsupported_verifiers(exc: BaseException) -> str | None:
    """Why the installed verifiers cannot run an environment, when that is the failure: the
    classic API (`vf.SingleTurnEnv`, ...) left in 0.4, `verifiers.v1` arrived in 0.3."""
    from importlib import metadata

    from vft.core.planning.environments import VERIFIERS_RANGE

    text = str(exc)
    classic_gone = isinstance(exc, AttributeError) and "module 'verifiers' has no" in text
    v1_missing = isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith(
        "verifiers.v1"
    )
    if not (classic_gone or v1_missing):
        return None
    try:
        have = metadata.version("verifiers")
    except metadata.PackageNotFoundError:
        have = "none"
    api = "the classic API (import verifiers as vf)" if classic_gone else "verifiers.v1"
    return (
        f"it uses {api}, which the installed verifiers {have} does not ship ({text}); "
        f"vft runs both APIs with verifiers {VERIFIERS_RANGE}: pip install 'verifiers{VERIFIERS_RANGE}'"
    )


def detect(module: ModuleType) -> Api:
    """`v1` when the module exports a `verifiers.v1` Taskset or Env subclass in `__all__`,
    `legacy` when it has `load_environment()`."""
    exported = [getattr(module, n, None) for n in getattr(module, "__all__", None) or ()]

    def v1_class(o: object) -> bool:  # by the class tree: importing verifiers.v1 costs seconds
        return isinstance(o, type) and any(
            c.__name__ in ("Taskset", "Env") and c.__module__.startswith("verifiers.v1.")
            for c in o.__mro__[1:]
        )

    if any(v1_class(o) for o in exported):
        return "v1"
    if callable(getattr(module, "load_environment", None)):
        return "legacy"
    raise TypeError(
        f"{module.__name__} is not a Verifiers environment: it neither exports a "
        "vf.Taskset (verifiers.v1) in __all__ nor defines load_environment()"
    )


def load(env_id: str, args: dict[str, Any] | None = None) -> Adapter:
    """The environment `env_id`, configured with `args`, behind its API's adapter.

    Load on the main thread: classic environments install signal handlers."""
    module = find_module(env_id)
    try:
        api = detect(module)
    except TypeError as exc:
        raise EnvironmentCodeError(env_id, exc, getattr(module, "__file__", None)) from exc
    if api == "v1":
        from vft.train.envs.v1 import V1Adapter

        return V1Adapter(env_id, module, dict(args or {}))
    from vft.train.envs.legacy import LegacyAdapter

    return LegacyAdapter(env_id, module, dict(args or {}))
