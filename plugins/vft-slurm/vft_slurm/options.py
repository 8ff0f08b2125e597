"""The recipe's `[backend.slurm]` table: where the job runs and how its environment is set up."""

from __future__ import annotations

import re

from vft.plugin import Table, field

# Slurm's --time forms: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
# partition, account, GRES type: plain words, so they are safe in an #SBATCH line
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# a value for --mem: a number with an optional K/M/G/T suffix
_MEM = re.compile(r"^\d+[KMGT]?$", re.I)


def _word(value: str) -> str:
    if not _WORD.match(value):
        raise ValueError("use letters, digits, '.', '_' or '-'")
    return value


def _time(value: str) -> str:
    if not _TIME.match(value):
        raise ValueError("use MM, HH:MM:SS or D-HH:MM:SS (Slurm's --time)")
    return value


def _mem(value: str) -> str:
    if not _MEM.match(value):
        raise ValueError("use a size such as '200G' (Slurm's --mem)")
    return value


def _sbatch(line: str) -> str:
    text = line.strip().removeprefix("#SBATCH").strip()
    if not text.startswith("-") or "\n" in text or "\r" in text:
        raise ValueError("use one sbatch option such as '--qos=high'")
    return text


def _setup(line: str) -> str:
    if "\n" in line or "\r" in line:
        raise ValueError("one shell line per item")
    return line


class SlurmOptions(Table):
    """Every field maps to one line of the batch script; `vft plan --backend slurm` shows it."""

    partition: str | None = field(
        None, check=_word, description="--partition; default: the cluster's."
    )
    account: str | None = field(None, check=_word, description="--account to charge.")
    time_limit: str | None = field(
        None,
        check=_time,
        description="--time, e.g. '24:00:00' or '2-00:00:00'; default: the partition's.",
    )
    gres_type: str | None = field(
        None,
        check=_word,
        description="GRES type of the GPUs to ask for (--gres=gpu:TYPE:N), as the cluster "
        "names them in gres.conf (e.g. 'a100'); default: any GPU (--gres=gpu:N).",
    )
    cpus_per_node: int | None = field(
        None, ge=1, description="--cpus-per-task for each node's agent (it runs every process)."
    )
    mem_per_node: str | None = field(None, check=_mem, description="--mem per node, e.g. '200G'.")
    sbatch: list[str] = field(
        default_factory=list,
        check=_sbatch,
        description="Extra #SBATCH lines, e.g. ['--qos=high', '--exclusive'].",
    )
    venv: str | None = field(
        None, description="A virtualenv with vft installed, on the shared filesystem; activated."
    )
    setup: list[str] = field(
        default_factory=list,
        check=_setup,
        description="Shell lines run before the agents start, e.g. ['module load cuda/12.4', "
        "'source ~/miniconda3/bin/activate vft'].",
    )
    python: str | None = field(
        None,
        description="The Python that runs vft in the job; default: the venv's python, else "
        "`python` when setup lines are given, else the Python running vft now.",
    )
