"""What the Modal image and function for a Plan are, as plain data: no `modal` import here.

`vft plan --backend modal` describes a run from this data alone; `image.py` and `app.py`
turn the same data into real Modal objects, so what is shown is what is built.
"""

from __future__ import annotations

import posixpath
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vft.backends.modal.pricing import container_size
from vft.core.plan import Plan

REMOTE_ROOT = "/opt/vft"  # the vft project: vft/, configs/, environments/, examples/
REMOTE_WORK = "/opt/vft-work"  # the user's folder, when vft runs from outside the project
REMOTE_INSTALL = "/opt/vft-install"  # copies of the recipe's environment.install packages
OUTPUTS = "/outputs"  # where the Volume is mounted
#: restarts after a transient failure when resources.restarts is unset: a long GPU run on
#: Modal meets a preemption now and then, and each restart resumes from a checkpoint
DEFAULT_RESTARTS = 2
RETRY_DELAY_S = 10.0  # before Modal starts a failed call again

PROJECT_ROOT = Path(__file__).resolve().parents[3]
EXTRAS = ("train", "inference")
CODE_DIRS = ("vft", "configs", "environments", "examples")
USER_DIRS = ("environments", "examples", "configs")
# git: environments that depend on git URLs; ninja-build: DeepSpeed compiles its ops with it
APT_PACKAGES = ("git", "ninja-build")
UV_VERSION = "0.13.8"  # pinned so a new uv release cannot change how the image resolves
IMAGE_ENV = {"PYTHONPATH": REMOTE_ROOT, "PYTHONUNBUFFERED": "1"}
# never shipped to the container: caches, VCS, local run outputs
IGNORE = (
    "**/__pycache__",
    "**/*.pyc",
    "**/.git",
    "**/.venv",
    "**/*.egg-info",
    "**/.pytest_cache",
    "**/.ruff_cache",
    "**/.mypy_cache",
    "outputs",
)


@dataclass(frozen=True)
class ImageSpec:
    """The image, layer by layer, dependencies first and the project's code last."""

    python_version: str
    apt: tuple[str, ...]
    requirements: tuple[str, ...]  # vft's own dependencies with [train,inference], as pinned
    pip: tuple[str, ...]  # the recipe's extra packages
    # (as the recipe wrote it, local folder, folder in the image) to pip install
    installs: tuple[tuple[str, str, str], ...]
    env: Mapping[str, str]
    code: tuple[tuple[str, str], ...]  # (local path, path in the container): added at start
    workdir: str

    def steps(self) -> list[str]:
        """The install steps in build order, as `vft plan` shows them."""
        steps = [f"debian-slim, Python {self.python_version}", f"apt: {' '.join(self.apt)}"]
        steps.append(f"uv pip (vft[{','.join(EXTRAS)}]): {', '.join(self.requirements)}")
        if self.pip:
            steps.append(f"uv pip (backend.modal.pip): {', '.join(self.pip)}")
        if self.installs:
            steps.append(f"environment.install: {', '.join(item for item, _, _ in self.installs)}")
        names = [Path(src).name + ("/" if Path(src).is_dir() else "") for src, _ in self.code]
        steps.append(f"code, added at start (editing it never rebuilds): {' '.join(names)}")
        return steps


@dataclass(frozen=True)
class FunctionSpec:
    """The Modal Function that runs one node of the plan per container."""

    app_name: str
    gpu: str | None
    nodes: int
    cpu: float
    memory_gib: int
    timeout_s: int
    volume: str
    secrets: tuple[str, ...]
    image: ImageSpec
    # how often Modal starts the call again after a transient failure (vft/backends/modal/retry.py)
    restarts: int = DEFAULT_RESTARTS

    @property
    def memory_mib(self) -> int:
        return self.memory_gib * 1024


def function_spec(
    plan: Plan, *, project_root: Path | None = None, workdir: Path | None = None
) -> FunctionSpec:
    """The function for `plan`; `workdir` is where the recipe's relative paths start (the
    recipe's folder, `plan.run.workdir`)."""
    from vft.backends.restarts import allowed_restarts, requested_restarts

    opts = plan.backend_options
    root = (project_root or PROJECT_ROOT).resolve()
    work = (workdir or Path(plan.run.workdir or ".")).resolve()
    cpu, memory = _size(plan, opts)
    return FunctionSpec(
        app_name=opts.get("app_name") or f"vft-{plan.name}",
        gpu=None if plan.is_cpu else f"{plan.gpu_type}:{plan.gpus_per_node}",
        nodes=plan.nodes,
        cpu=cpu,
        memory_gib=memory,
        timeout_s=round(float(opts.get("timeout_hours", 24)) * 3600),
        volume=opts.get("volume", "vft-outputs"),
        secrets=tuple(opts.get("secrets", ("wandb", "huggingface"))),
        image=image_spec(plan, root, work),
        restarts=allowed_restarts(requested_restarts(plan), DEFAULT_RESTARTS),
    )


def plan_in_container(plan: Plan, spec: FunctionSpec) -> Plan:
    """The plan as the containers run it: the recipe's folder is the image's workdir,
    where its `USER_DIRS` were copied."""
    return replace(plan, run=replace(plan.run, workdir=spec.image.workdir))


def image_spec(plan: Plan, root: Path, work: Path) -> ImageSpec:
    opts = plan.backend_options
    code = [(str(root / d), f"{REMOTE_ROOT}/{d}") for d in CODE_DIRS if (root / d).is_dir()]
    if (root / "pyproject.toml").is_file():
        code.append((str(root / "pyproject.toml"), f"{REMOTE_ROOT}/pyproject.toml"))
    workdir = REMOTE_ROOT
    if work != root:
        workdir = REMOTE_WORK
        code += [(str(work / d), f"{REMOTE_WORK}/{d}") for d in USER_DIRS if (work / d).is_dir()]
    script = remote_script(plan, workdir)
    local = work / (plan.trainer.script or "")
    # sent alone, unless a folder that is sent holds it
    sent = script is None or any(script.startswith(dst + "/") for _, dst in code)
    if script is not None and local.is_file() and not sent:
        code.append((str(local.resolve()), script))
    installs = []
    for i, item in enumerate(plan.install):
        local = (work / item).resolve()
        installs.append((item, str(local), f"{REMOTE_INSTALL}/{i}-{local.name}"))
    return ImageSpec(
        python_version=opts.get("python_version", "3.11"),
        apt=tuple(dict.fromkeys([*APT_PACKAGES, *opts.get("apt", ())])),
        requirements=tuple(requirements(root)),
        pip=tuple(opts.get("pip", ())),
        installs=tuple(installs),
        env=dict(IMAGE_ENV),
        code=tuple(code),
        workdir=workdir,
    )


def remote_script(plan: Plan, workdir: str) -> str | None:
    """Where `trainer.script` lies in the container: the same path from the workdir as
    from the recipe's folder here (so the plan's argv holds unchanged); None when that
    leaves /opt/, or lands in vft's own folders, or there is no script."""
    script = plan.trainer.script
    if not script or Path(script).is_absolute():
        return None
    remote = posixpath.normpath(posixpath.join(workdir, Path(script).as_posix()))
    if not remote.startswith("/opt/") or any(
        remote.startswith(d + "/") for d in (REMOTE_INSTALL, f"{REMOTE_ROOT}/vft")
    ):
        return None
    return remote


def requirements(root: Path) -> list[str]:
    """vft's dependencies with the train and inference extras, as its pyproject pins them.

    The pyproject is the one source of truth: changing a pin there changes this list and
    so rebuilds the dependency layer; nothing else does.
    """
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text())["project"]
        extras = project.get("optional-dependencies", {})
        found = [*project.get("dependencies", [])]
        for extra in EXTRAS:
            found += extras.get(extra, [])
    else:  # vft installed from a wheel: its metadata carries the same pins
        from importlib import metadata

        found = []
        for req in metadata.requires("vft") or []:
            spec, _, marker = req.partition(";")
            m = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
            if not marker.strip() or (m and m.group(1) in EXTRAS):
                found.append(spec.strip())
    return list(dict.fromkeys(r.strip() for r in found))


def _size(plan: Plan, opts: Mapping[str, Any]) -> tuple[float, int]:
    gpus = 0 if plan.is_cpu else plan.gpus_per_node
    return container_size(gpus, plan.trainer.offload_optimizer, opts)


def remote_run_dir(name: str, attempt: int) -> str:
    """The attempt's folder relative to the Volume's root (`/outputs/<this>` in the container)."""
    return f"{name}/attempt-{attempt}"


def describe_rows(plan: Plan, spec: FunctionSpec) -> list[tuple[str, str]]:
    """Rows for `vft plan --backend modal`: the image, GPUs, container, volume, secrets,
    restarts (the price, containers included, is the plan's cost line)."""
    from vft.backends.restarts import plan_row, requested_restarts

    rows = [("image", "; ".join(spec.image.steps()))]
    rows.append(("gpu", f'gpu="{spec.gpu}"' if spec.gpu else "none (CPU container)"))
    if spec.nodes > 1:
        rows.append(("cluster", f"modal.clustered(size={spec.nodes}): {spec.nodes} containers"))
    rows.append(
        (
            "container",
            f"cpu={spec.cpu:g} cores, memory={spec.memory_gib} GiB, "
            f"timeout={spec.timeout_s / 3600:g} h, app {spec.app_name}",
        )
    )
    rows.append(
        ("volume", f"{spec.volume} at {OUTPUTS}; run folder {OUTPUTS}/{plan.name}/attempt-N")
    )
    rows.append(("secrets", ", ".join(spec.secrets) or "none"))
    rows.append(plan_row(requested_restarts(plan), DEFAULT_RESTARTS))
    return rows
