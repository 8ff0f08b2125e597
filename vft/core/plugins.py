"""The plugin machinery on one screen: a pluggy manager, built-ins first, then entry points.

`VFT_DISABLE_PLUGIN_AUTOLOAD=1` loads no external plugin (tests use it);
`VFT_PLUGINS=a,b` loads only the named distributions or entry-point names.
A plugin that fails to import is recorded in `Registry.errors` and skipped.
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from vft.core import hookspecs
from vft.core.errors import UserError

ENTRY_POINT_GROUP = "vft"
BUILTIN_PLUGINS = (
    "vft.backends.local",
    "vft.backends.modal",
    "vft.core.servers",
)


@dataclass(frozen=True)
class Registered:
    """One registered thing and the package it came from."""

    cls: type[Any]
    package: str
    version: str


@dataclass
class Registry:
    backends: dict[str, Registered] = field(default_factory=dict)
    servers: dict[str, Registered] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # "package: error" per broken plugin

    def backend(self, name: str) -> Any:
        """A fresh instance of the named backend, or a one-line error listing the known ones."""
        if name not in self.backends:
            raise UserError(
                f"--backend: unknown backend {name!r}; installed: {', '.join(sorted(self.backends))}"
                + self._broken_hint()
            )
        return self.backends[name].cls()

    def server(self, name: str) -> Any:
        if name not in self.servers:
            raise UserError(
                f"inference.engine: unknown inference server {name!r}; "
                f"installed: {', '.join(sorted(self.servers))}" + self._broken_hint()
            )
        return self.servers[name].cls()

    def _broken_hint(self) -> str:
        return f" (plugins that failed to load: {'; '.join(self.errors)})" if self.errors else ""


def _allowlist() -> set[str] | None:
    raw = os.environ.get("VFT_PLUGINS", "").strip()
    return {x.strip() for x in raw.split(",") if x.strip()} if raw else None


def _autoload_disabled() -> bool:
    return os.environ.get("VFT_DISABLE_PLUGIN_AUTOLOAD", "").strip().lower() in {"1", "true", "yes"}


@functools.cache
def plugin_manager() -> tuple[pluggy.PluginManager, tuple[str, ...], dict[str, tuple[str, str]]]:
    """Build the manager once per process (tests call `plugin_manager.cache_clear()`).

    Returns the manager, the load errors, and plugin name -> (package, version).
    """
    pm = pluggy.PluginManager("vft")
    pm.add_hookspecs(hookspecs)
    errors: list[str] = []
    origin: dict[str, tuple[str, str]] = {}
    from vft import __version__

    for module_name in BUILTIN_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        origin[module_name] = ("vft", __version__)
    if not _autoload_disabled():
        allow = _allowlist()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else ep.value.split(":")[0]
            version = ep.dist.version if ep.dist else "?"
            if allow is not None and ep.name not in allow and dist not in allow:
                continue
            if pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
            except Exception as exc:  # a broken plugin must not break vft
                errors.append(f"{dist}: {type(exc).__name__}: {exc}")
                continue
            origin[ep.name] = (dist, version)
    return pm, tuple(errors), origin


def registry() -> Registry:
    """Call every registration hook and check names; duplicates are errors naming both packages."""
    pm, errors, origin = plugin_manager()
    reg = Registry(errors=list(errors))
    for hook, table, kind in (
        (pm.hook.vft_register_backends, reg.backends, "backend"),
        (pm.hook.vft_register_inference_servers, reg.servers, "inference server"),
    ):
        for impl in hook.get_hookimpls():
            package, version = origin.get(impl.plugin_name, (impl.plugin_name, "?"))

            impl.function(
                register=functools.partial(_add, table, kind, package=package, version=version)
            )
    return reg


def _add(
    table: dict[str, Registered], kind: str, cls: type[Any], *, package: str, version: str
) -> None:
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise UserError(f"plugin {package}: {kind} {cls!r} has no string `name`")
    if name in table and table[name].cls is not cls:
        raise UserError(
            f"{kind} name {name!r} is registered twice: by {table[name].package} and by {package}; "
            "uninstall one, or limit plugins with VFT_PLUGINS"
        )
    table[name] = Registered(cls, package, version)
