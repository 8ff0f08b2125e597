"""The recipe's `[backend.modal]` table."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    volume: str = Field(
        "vft-outputs", description="Modal Volume mounted at /outputs (created if missing)."
    )
    secrets: list[str] = Field(
        default_factory=lambda: ["wandb", "huggingface"],
        description="Modal Secrets attached to the run (names only).",
    )
    timeout_hours: float = Field(
        24, gt=0, le=24, description="Container timeout; Modal allows 24 h."
    )
    app_name: str | None = Field(None, description="Default: vft-<recipe name>.")
