"""The recipe's `[backend.slurm]` table: where the job runs and how its environment is set up."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Slurm's --time forms: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
# partition, account, GRES type: plain words, so they are safe in an #SBATCH line
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# a value for --mem: a number with an optional K/M/G/T suffix
_MEM = re.compile(r"^\d+[KMGT]?$", re.I)


class SlurmOptions(BaseModel):
    """Every field maps to one line of the batch script; `vft plan --backend slurm` shows it."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = Field(None, description="--partition; default: the cluster's.")
    account: str | None = Field(None, description="--account to charge.")
    time_limit: str | None = Field(
        None, description="--time, e.g. '24:00:00' or '2-00:00:00'; default: the partition's."
    )
    gres_type: str | None = Field(
        None,
        description="GRES type of the GPUs to ask for (--gres=gpu:TYPE:N), as the cluster "
        "names them in gres.conf (e.g. 'a100'); default: any GPU (--gres=gpu:N).",
    )
    cpus_per_node: int | None = Field(
        None, ge=1, description="--cpus-per-task for each node's agent (it runs every process)."
    )
    mem_per_node: str | None = Field(None, description="--mem per node, e.g. '200G'.")
    sbatch: list[str] = Field(
        default_factory=list,
        description="Extra #SBATCH lines, e.g. ['--qos=high', '--exclusive'].",
    )
    venv: str | None = Field(
        None, description="A virtualenv with vft installed, on the shared filesystem; activated."
    )
    setup: list[str] = Field(
        default_factory=list,
        description="Shell lines run before the agents start, e.g. ['module load cuda/12.4', "
        "'source ~/miniconda3/bin/activate vft'].",
    )
    python: str | None = Field(
        None,
        description="The Python that runs vft in the job; default: the venv's python, else "
        "`python` when setup lines are given, else the Python running vft now.",
    )

    @field_validator("partition", "account", "gres_type")
    @classmethod
    def _word(cls, value: str | None) -> str | None:
        if value is not None and not _WORD.match(value):
            raise ValueError("use letters, digits, '.', '_' or '-'")
        return value

    @field_validator("time_limit")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None and not _TIME.match(value):
            raise ValueError("use MM, HH:MM:SS or D-HH:MM:SS (Slurm's --time)")
        return value

    @field_validator("mem_per_node")
    @classmethod
    def _mem(cls, value: str | None) -> str | None:
        if value is not None and not _MEM.match(value):
            raise ValueError("use a size such as '200G' (Slurm's --mem)")
        return value

    @field_validator("sbatch")
    @classmethod
    def _sbatch(cls, lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            text = line.strip().removeprefix("#SBATCH").strip()
            if not text.startswith("-") or "\n" in text or "\r" in text:
                raise ValueError(f"{line!r} is not one sbatch option such as '--qos=high'")
            out.append(text)
        return out

    @field_validator("setup")
    @classmethod
    def _setup(cls, lines: list[str]) -> list[str]:
        for line in lines:
            if "\n" in line or "\r" in line:
                raise ValueError(f"{line!r}: one shell line per item")
        return lines
