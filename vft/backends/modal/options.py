"""The recipe's `[backend.modal]` table."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vft.core.recipe.schema import NAME_PATTERN

PYTHON_VERSIONS = ("3.11", "3.12")


class ModalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    volume: str = Field(
        "vft-outputs",
        pattern=NAME_PATTERN,
        description="Modal Volume mounted at /outputs (created if missing).",
    )
    secrets: list[str] = Field(
        default_factory=lambda: ["wandb", "huggingface"],
        description="Modal Secrets attached to the run (names only); [] for none.",
    )
    timeout_hours: float = Field(
        24, gt=0, le=24, description="Container timeout; Modal allows 24 h."
    )
    app_name: str | None = Field(None, description="Default: vft-<recipe name>.")
    python_version: str = Field("3.11", description="Python of the image: 3.11 or 3.12.")
    pip: list[str] = Field(
        default_factory=list,
        description="Extra pip requirements for the image, e.g. ['flash-attn==2.8.3'].",
    )
    apt: list[str] = Field(default_factory=list, description="Extra Debian packages for the image.")
    cpu: float | None = Field(
        None, gt=0, le=128, description="CPU cores per container; default: sized for the GPUs."
    )
    memory_gib: int | None = Field(
        None, gt=0, le=2048, description="Memory per container (GiB); default: sized for the GPUs."
    )

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, value: list[str]) -> list[str]:
        import re

        for name in value:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"{name!r} is not a Modal secret name")
        return value

    @field_validator("python_version")
    @classmethod
    def _python(cls, value: str) -> str:
        if value not in PYTHON_VERSIONS:
            raise ValueError(f"{value!r} is not supported; use one of {', '.join(PYTHON_VERSIONS)}")
        return value

    @field_validator("pip", "apt")
    @classmethod
    def _no_options(cls, value: list[str]) -> list[str]:
        # these become image build commands: a leading '-' would be an option, not a package
        for item in value:
            if not item.strip() or item.strip().startswith("-"):
                raise ValueError(f"{item!r} is not a package name")
        return value
