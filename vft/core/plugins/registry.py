"""The plugin machinery on one screen: a pluggy manager, built-ins first, then entry points.

`VFT_DISABLE_PLUGIN_AUTOLOAD=1` loads no external plugin (tests use it);
`VFT_PLUGINS=a,b` loads only the named distributions or entry-point names.
A plugin that fails to load is recorded in `Registry.errors` ("package: error") and
skipped; the other backends, and every command that needs no plugin, keep working.
Both the manager and the registry are built once per process; `reset()` forgets them.
The entry points come from `vft.core.installed` (a cached index of the installed
distributions); each plugin itself is imported through its entry point, as pip declared it.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from vft.core.errors import UserError
from vft.core.installed import EntryPoint, canonical, installed
from vft.core.plugins import hookspecs

if TYPE_CHECKING:
    from vft.core.engines.base import InferenceServer
    from vft.core.plugins.backend import Backend

ENTRY_POINT_GROUP = "vft"
BUILTIN_PLUGINS = (
    "vft.backends.local",
    "vft.backends.modal",
    "vft.core.engines.vllm",
)
# a name is a CLI argument and a TOML key (`[backend.<name>]`): keep it plain
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
#: backends of vft's own that ship as packages of their own: name -> (distribution, folder
#: in a vft checkout), so that naming one that is not installed says how to install it
OPTIONAL_BACKENDS = {"slurm": ("vft-slurm", "plugins/vft-slurm")}


@dataclass(frozen=True)
class Registered:
    """One registered class and the distribution it came from."""

    cls: type[Any]
    package: str
    version: str


@dataclass
class Registry:
    """Every backend and inference server, by name, plus what went wrong while loading."""

    backends: dict[str, Registered] = field(default_factory=dict)
    servers: dict[str, Registered] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # one line per problem, naming the package
    # (kind, name) -> the error for a name two packages registered; neither is kept
    conflicts: dict[tuple[str, str], str] = field(default_factory=dict)

    def backend(self, name: str) -> Backend:
        """A fresh instance of the named backend, or a one-line error listing the known ones."""
        return self._make("backend", self.backends, name, "--backend")

    def server(self, name: str) -> InferenceServer:
        """A fresh instance of the named inference server engine."""
        return self._make("inference server", self.servers, name, "inference.engine")

    def _make(self, kind: str, table: dict[str, Registered], name: str, key: str) -> Any:
        entry = self._get(kind, table, name, key)
        try:
            return entry.cls()
        except Exception as exc:  # a plugin's bug is reported as its own, in one line
            raise UserError(
                f"{key}: {kind} {name!r} from {entry.package} {entry.version} failed to start: "
                f"{_describe(exc)}"
            ) from None

    def _get(self, kind: str, table: dict[str, Registered], name: str, key: str) -> Registered:
        if (kind, name) in self.conflicts:
            raise UserError(f"{key}: {self.conflicts[kind, name]}")
        if name not in table:
            broken = (
                f" (plugins that failed to load: {'; '.join(self.errors)})" if self.errors else ""
            )
            hint = did_you_mean(name, table)
            if kind == "backend" and not hint:
                hint = not_installed(name, table, self.errors)
            raise UserError(
                f"{key}: unknown {kind} {name!r}{hint}; "
                f"installed: {', '.join(sorted(table))}{broken}"
            )
        return table[name]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """` (did you mean 'modal'?)` for a near miss among `known`, else ''."""
    import difflib

    pool = sorted(known)
    folded = {k.lower(): k for k in pool}
    if name.lower() in folded:  # `-b Modal`: only the case differs
        return f" (did you mean {folded[name.lower()]!r}?)"
    close = difflib.get_close_matches(name[:64].lower(), list(folded), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(folded[c]) for c in close)}?)" if close else ""


def not_installed(name: str, installed: Iterable[str], errors: Iterable[str] = ()) -> str:
    """` ('slurm' is not installed: ...)` when `name` is, or nearly is, one of vft's optional
    backends that is not installed here (one that failed to load is reported as such)."""
    import difflib

    failed = " ".join(errors)
    pool = [
        n
        for n, (dist, _) in OPTIONAL_BACKENDS.items()
        if n not in installed and f"{dist}:" not in failed
    ]
    wanted = name[:64].lower()
    close = [wanted] if wanted in pool else difflib.get_close_matches(wanted, pool, n=1, cutoff=0.6)
    if not close:
        return ""
    dist, folder = OPTIONAL_BACKENDS[close[0]]
    said = "" if close[0] == wanted else f"did you mean {close[0]!r}? "
    return (
        f" ({said}{close[0]!r} is not installed: it is the {dist} package, "
        f"`pip install ./{folder}` in a vft checkout)"
    )


def reset() -> None:
    """Forget the manager and registry, so the next call re-reads the environment (tests)."""
    registry.cache_clear()
    plugin_manager.cache_clear()


# plugin name -> (distribution, version) of each entry-point plugin, filled as they load
_ORIGIN: dict[str, tuple[str, str]] = {}


@functools.cache
def plugin_manager() -> tuple[pluggy.PluginManager, tuple[str, ...]]:
    """The manager with built-ins then entry points registered, and the load errors."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:  # built-ins are vft's own code: a failure is a bug
        pm.register(importlib.import_module(module_name), name=module_name)
    errors: list[str] = []
    _ORIGIN.clear()
    if not _env_flag("VFT_DISABLE_PLUGIN_AUTOLOAD"):
        _load_entry_points(pm, _allowlist(), errors)
    return pm, tuple(errors)


def _load_entry_points(pm: pluggy.PluginManager, allow: set[str] | None, errors: list[str]) -> None:
    """Load each `vft` entry point on its own, so one broken package cannot stop the others."""
    by_name: dict[str, list[EntryPoint]] = {}
    for ep in installed().select(ENTRY_POINT_GROUP):
        by_name.setdefault(ep.name, []).append(ep)
    wanted: set[str] = set()
    for name, eps in sorted(by_name.items()):
        packages = sorted({_dist_name(ep) for ep in eps})
        if allow is not None:
            matched = allow & {canonical(name), *map(canonical, packages)}
            if not matched:
                continue
            wanted |= matched
        if len(packages) > 1:
            errors.append(
                f"{' and '.join(packages)}: both declare the vft plugin {name!r}; "
                "uninstall one, or choose one with VFT_PLUGINS"
            )
            continue
        (ep,) = eps
        try:
            # the index's entry point, not pluggy's loader (which rescans every
            # distribution for each plugin), then the public register()
            pm.register(ep.load(), name=name)
        except Exception as exc:  # a broken plugin must not break vft
            if pm.get_plugin(name) is not None:  # pluggy leaves a half-registered plugin
                pm.unregister(name=name)
            errors.append(f"{packages[0]}: cannot load plugin {name!r}: {_describe(exc)}")
            continue
        _ORIGIN[name] = (packages[0], ep.version or "?")
        plugin = pm.get_plugin(name)
        unknown = sorted(c.name for c in pm.get_hookcallers(plugin) or () if not c.has_spec())
        if unknown:  # a misspelt hook would otherwise register nothing, silently
            pm.unregister(plugin)
            errors.append(
                f"{packages[0]}: {', '.join(unknown)} is not a vft hook "
                f"(hooks: {', '.join(hook_names())})"
            )
    for missing in sorted((allow or set()) - wanted):
        errors.append(f"VFT_PLUGINS: no installed package provides a vft plugin {missing!r}")


@functools.cache
def registry() -> Registry:
    """Call every registration hook once; check each registered class in one place."""
    from vft import __version__
    from vft.core.engines.base import InferenceServer
    from vft.core.plugins.backend import Backend

    pm, errors = plugin_manager()
    origin = dict(_ORIGIN)
    reg = Registry(errors=list(errors))
    for hook, table, kind, base in (
        (pm.hook.vft_register_backends, reg.backends, "backend", Backend),
        (pm.hook.vft_register_inference_servers, reg.servers, "inference server", InferenceServer),
    ):
        seen: dict[str, list[Registered]] = {}
        # registration order: built-ins first, then entry points in name order
        for impl in hook.get_hookimpls():
            package, version = origin.get(impl.plugin_name, ("vft", __version__))
            staged: list[type[Any]] = []
            try:
                impl.function(**{a: staged.append for a in impl.argnames})
            except Exception as exc:
                reg.errors.append(f"{package}: {hook.name} failed: {_describe(exc)}")
                continue
            for cls in staged:
                problem = _invalid(cls, kind, base)
                if problem:
                    reg.errors.append(f"{package}: {problem}")
                    continue
                entry = Registered(cls, package, version)
                if all(e.cls is not cls for e in seen.get(cls.name, [])):
                    seen.setdefault(cls.name, []).append(entry)
        for name, entries in seen.items():
            if len(entries) == 1:
                table[name] = entries[0]
                continue
            message = (
                f"{kind} name {name!r} is registered twice: by "
                + " and by ".join(f"{e.package} {e.version}" for e in entries)
                + "; uninstall one, or limit plugins with VFT_PLUGINS"
            )
            reg.conflicts[kind, name] = message
            reg.errors.append(message)  # it names both packages already
    return reg


def hook_names() -> list[str]:
    """Every hook a plugin may implement, from the one module that declares them."""
    return sorted(n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "vft_spec"))


def _invalid(cls: Any, kind: str, base: type) -> str | None:
    """Why `cls` cannot be registered as a `kind`, or None if it can."""
    if not (isinstance(cls, type) and issubclass(cls, base)):
        what = f"{cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else repr(cls)
        return f"{kind} {what} is not a subclass of vft.plugin.{base.__name__}"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not NAME.match(name):
        return (
            f"{kind} {cls.__module__}.{cls.__qualname__} has name {name!r}; "
            "a name is lowercase letters, digits, '-' or '_' (at most 32, starting with a letter)"
        )
    where = f"{kind} {name!r} ({cls.__module__}.{cls.__qualname__})"
    if kind == "backend":
        from vft.core.planning.capabilities import Capabilities

        if not isinstance(getattr(cls, "capabilities", None), Capabilities):
            return f"{where}: capabilities must be a vft.plugin.Capabilities"
        from vft.core.plugins.backend import LazyModel

        # read without resolving it: a "module:Class" model is imported on first use
        model = next(
            (k.__dict__["options_model"] for k in cls.__mro__ if "options_model" in k.__dict__),
            None,
        )
        if isinstance(model, LazyModel):
            if not re.fullmatch(r"[\w.]+:\w+", model.target):
                return f"{where}: options_model {model.target!r} is not 'module:Class'"
        elif model is not None and not callable(getattr(model, "model_validate", None)):
            return f"{where}: options_model must be an options model class (pydantic, or vft.plugin.Table) or None"
    elif not callable(getattr(cls, "command", None)):
        return f"{where}: has no command(part) method"
    return None


def _describe(exc: BaseException) -> str:
    """The exception on one line (pluggy's validation errors span several)."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if len(text) > 400:
        text = text[:400] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _dist_name(ep: EntryPoint) -> str:
    return ep.dist or ep.value.split(":")[0]


def _allowlist() -> set[str] | None:
    """PEP 503 names, so `vft_example` in VFT_PLUGINS matches the distribution `vft-example`."""
    raw = os.environ.get("VFT_PLUGINS", "").strip()
    return {canonical(x.strip()) for x in raw.split(",") if x.strip()} if raw else None


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
