"""The batch script for a Plan: rendered from `batch.sh.template`, pure (no Slurm, no I/O).

Every value taken from the plan or the options is either validated to be a plain word
(options.py) or shell-quoted here; only the recipe's `setup` lines, which are shell by
definition, are written as they are.
"""

from __future__ import annotations

import shlex
import string
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from vft.plugin import UserError, node_argv

if TYPE_CHECKING:
    from vft.plugin import Plan
    from vft_slurm.options import SlurmOptions


@dataclass(frozen=True)
class JobSpec:
    """Where the script runs: the attempt folder (shared filesystem) and the job's cwd."""

    run_dir: str
    workdir: str


def template() -> string.Template:
    text = resources.files("vft_slurm").joinpath("batch.sh.template").read_text()
    return string.Template(text)


def job_python(options: SlurmOptions) -> str:
    """The interpreter that runs vft inside the job (see SlurmOptions.python)."""
    if options.python:
        return options.python
    if options.venv:
        return f"{options.venv.rstrip('/')}/bin/python"
    if options.setup:
        return "python"
    return sys.executable


def gres(plan: Plan, options: SlurmOptions) -> str | None:
    """`gpu:N` or `gpu:TYPE:N` per node; None for a CPU plan."""
    if plan.is_cpu:
        return None
    kind = f"{options.gres_type}:" if options.gres_type else ""
    return f"gpu:{kind}{plan.gpus_per_node}"


def sbatch_options(plan: Plan, options: SlurmOptions, spec: JobSpec) -> list[str]:
    """The job's resources, in the order a reader looks for them; extras last."""
    for label, path in (("run folder", spec.run_dir), ("working directory", spec.workdir)):
        if any(c.isspace() for c in path):
            raise UserError(
                f"slurm: the {label} {path!r} contains whitespace, which an #SBATCH line "
                "cannot hold; set run.output_dir (or run vft from) a path without spaces"
            )
    lines = [
        f"--job-name=vft-{plan.name}",
        f"--nodes={plan.nodes}",
        "--ntasks-per-node=1",
    ]
    if (g := gres(plan, options)) is not None:
        lines.append(f"--gres={g}")
    if options.cpus_per_node:
        lines.append(f"--cpus-per-task={options.cpus_per_node}")
    if options.mem_per_node:
        lines.append(f"--mem={options.mem_per_node}")
    if options.partition:
        lines.append(f"--partition={options.partition}")
    if options.account:
        lines.append(f"--account={options.account}")
    if options.time_limit:
        lines.append(f"--time={options.time_limit}")
    # beside logs/, not in it: the agents echo every process there too, so `vft logs`
    # would show each line twice
    lines += [f"--output={spec.run_dir}/slurm-%j.out", f"--chdir={spec.workdir}"]
    return lines + list(options.sbatch)


def setup_lines(options: SlurmOptions, python: str) -> list[str]:
    lines: list[str] = []
    if options.venv:
        lines.append(f"source {shlex.quote(options.venv.rstrip('/') + '/bin/activate')}")
    lines += options.setup
    if not lines:
        # the Python running vft now, and the tools next to it (accelerate, vllm)
        bindir = shlex.quote(str(Path(python).parent))
        lines.append(f'export PATH={bindir}:"$PATH"')
    return lines


def render(plan: Plan, options: SlurmOptions, spec: JobSpec) -> str:
    """The whole batch script for `plan`, ready for `sbatch`."""
    python = job_python(options)
    py = shlex.quote(python)
    install = ""
    if plan.install:
        # a shared environment: installing once, on the first node, serves every node
        install = f'{py} -m vft_slurm.node install "$VFT_RUN_DIR" || exit 1\n'
    srun_extra = f"--cpus-per-task={options.cpus_per_node} " if options.cpus_per_node else ""
    # the public node entry; the variables are expanded by each task's own shell
    node = node_argv('"$VFT_RUN_DIR"', '"$SLURM_NODEID"', '"$VFT_NODE_ADDRESSES"', python=py)
    node_command = "exec " + " ".join(node)
    return template().substitute(
        name=plan.name,
        nodes=plan.nodes,
        run_dir=spec.run_dir,
        run_dir_q=shlex.quote(spec.run_dir),
        sbatch_lines="\n".join(f"#SBATCH {o}" for o in sbatch_options(plan, options, spec)),
        setup="\n".join(setup_lines(options, python)),
        install=install,
        python=py,
        srun_extra=srun_extra,
        node_command=node_command,
    )
