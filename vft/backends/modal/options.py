"""The recipe's `[backend.modal]` table."""

from __future__ import annotations

import re

from vft.core.recipe.schema import NAME_PATTERN, NAME_TEXT
from vft.core.recipe.tables import Table, field

PYTHON_VERSIONS = ("3.11", "3.12")


def _secret_name(name: str) -> str:
    if not re.match(NAME_PATTERN, name):
        raise ValueError(f"not a Modal secret name: {NAME_TEXT}")
    return name


def _python(value: str) -> str:
    if value not in PYTHON_VERSIONS:
        raise ValueError(f"use one of {', '.join(PYTHON_VERSIONS)}")
    return value


def _package(item: str) -> str:
    # these become image build commands: a leading '-' would be an option, not a package
    if not item.strip() or item.strip().startswith("-"):
        raise ValueError("it is not a package name (one requirement per item, no options)")
    return item


class ModalOptions(Table):
    volume: str = field(
        "vft-outputs",
        pattern=NAME_PATTERN,
        pattern_text=NAME_TEXT,
        description="Modal Volume mounted at /outputs (created if missing).",
    )
    secrets: list[str] = field(
        default_factory=lambda: ["wandb", "huggingface"],
        check=_secret_name,
        description="Modal Secrets attached to the run (names only); [] for none.",
    )
    timeout_hours: float = field(
        24, gt=0, le=24, description="Container timeout; Modal allows 24 h."
    )
    app_name: str | None = field(None, description="Default: vft-<recipe name>.")
    python_version: str = field(
        "3.11", check=_python, description="Python of the image: 3.11 or 3.12."
    )
    pip: list[str] = field(
        default_factory=list,
        check=_package,
        description="Extra pip requirements for the image, e.g. ['flash-attn==2.8.3'].",
    )
    apt: list[str] = field(
        default_factory=list, check=_package, description="Extra Debian packages for the image."
    )
    cpu: float | None = field(
        None, gt=0, le=128, description="CPU cores per container; default: sized for the GPUs."
    )
    memory_gib: int | None = field(
        None, gt=0, le=2048, description="Memory per container (GiB); default: sized for the GPUs."
    )
