"""`vft backends`: every registered backend and inference server, and plugins that failed."""

from __future__ import annotations

import json
from typing import Any

import click


@click.command("backends")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def backends_command(as_json: bool) -> None:
    """List installed backends (built-ins and plugins): package, version, capabilities.

    Also lists inference server engines and any plugin that failed to load, with its
    package and the error. VFT_PLUGINS and VFT_DISABLE_PLUGIN_AUTOLOAD narrow what loads.
    """
    from vft.core.plugins.registry import registry

    data = describe(registry())
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    _show(data)


def describe(reg: Any) -> dict[str, Any]:
    """The registry as plain data: what `--json` prints and the tables show."""
    backends = []
    for name, entry in sorted(reg.backends.items()):
        model = entry.cls.options_model
        missing = entry.cls.missing()
        backends.append(
            {
                "name": name,
                "package": entry.package,
                "version": entry.version,
                "available": not missing,
                "missing": missing,
                "install": (entry.cls.install_hint or f"pip install {' '.join(missing)}")
                if missing
                else None,
                "capabilities": entry.cls.capabilities.as_dict(),
                "options": sorted(model.model_fields) if model is not None else [],
                "doc": _first_line(entry.cls.__doc__),
            }
        )
    servers = [
        {
            "name": name,
            "package": entry.package,
            "version": entry.version,
            "needs_gpu": entry.cls.needs_gpu,
            "health_path": entry.cls.health_path,
        }
        for name, entry in sorted(reg.servers.items())
    ]
    return {"backends": backends, "inference_servers": servers, "errors": list(reg.errors)}


def _show(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape  # an install line's `[modal]` is not markup
    from rich.table import Table

    console = Console()
    table = Table(title="backends", title_justify="left")
    for col in ("name", "package", "version", "capabilities", "available"):
        table.add_column(col, overflow="fold")
    for b in data["backends"]:
        available = "yes" if b["available"] else escape(f"no: {b['install']}")
        table.add_row(
            b["name"], b["package"], b["version"], capability_text(b["capabilities"]), available
        )
    console.print(table)
    servers = Table(title="inference servers (inference.engine)", title_justify="left")
    for col in ("name", "package", "version", "needs GPU"):
        servers.add_column(col)
    for s in data["inference_servers"]:
        servers.add_row(s["name"], s["package"], s["version"], "yes" if s["needs_gpu"] else "no")
    console.print(servers)
    for error in data["errors"]:  # whole lines on stderr: easy to read, easy to grep
        click.echo(f"plugin error: {error}", err=True)


def capability_text(caps: dict[str, Any]) -> str:
    """One compact line: what the backend can do, then its limits."""
    flags = [label for key, label in _FLAGS if caps.get(key)]
    types = caps["gpu_types"]
    gpus = "any GPU" if types == "any" else ("no GPU" if not types else "/".join(types))
    if caps.get("max_gpus_per_node"):
        gpus += f", max {caps['max_gpus_per_node']}/node"
    if caps.get("multi_node") and caps.get("max_nodes"):
        gpus += f", max {caps['max_nodes']} nodes"
    return ", ".join([*flags, gpus])


_FLAGS = (
    ("multi_node", "multi-node"),
    ("detach", "detach"),
    ("outputs", "outputs"),
    ("cpu", "cpu"),
)


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""
