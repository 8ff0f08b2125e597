"""What the Modal image and function for a Plan are, as plain data: no `modal` import here.

`vft plan --backend modal` describes a run from this data alone; `image.py` and `app.py`
turn the same data into real Modal objects, so what is shown is what is built.

The image is the same whether vft runs from a checkout (editable install) or from a
wheel: the requirements are one canonical text (`canonical_requirement`), read from the
checkout's pyproject.toml or from the installed metadata, and the code always arrives in
the wheel's layout (`PACKAGE_LAYOUT`: `vft/` with vft.configs, vft.recipes and the
built-in environments nested in it) at the same container paths, in the same order.
The one deliberate difference is where the files come from: a checkout ships its
working files (so an edit to vft reaches the run), an installed vft its installed files;
`vft plan` says which.
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
from vft.core.installed import canonical
from vft.core.plan import Plan

REMOTE_ROOT = "/opt/vft"  # on the PYTHONPATH: the vft package, in the wheel's layout
REMOTE_PACKAGE = f"{REMOTE_ROOT}/vft"
REMOTE_WORK = "/opt/vft-work"  # the recipe's folder: the processes' working folder
REMOTE_INSTALL = "/opt/vft-install"  # copies of the recipe's environment.install packages
OUTPUTS = "/outputs"  # where the Volume is mounted
#: restarts after a transient failure when resources.restarts is unset: a long GPU run on
#: Modal meets a preemption now and then, and each restart resumes from a checkpoint
DEFAULT_RESTARTS = 2
RETRY_DELAY_S = 10.0  # before Modal starts a failed call again

#: the folder holding the `vft` package: a checkout (editable install) or site-packages
PROJECT_ROOT = Path(__file__).resolve().parents[3]
EXTRAS = ("train", "inference")
#: where the packages that a wheel nests under vft/ live in a checkout (pyproject's
#: [tool.setuptools.package-dir]; tests/backends/modal/test_image_determinism.py checks it)
PACKAGE_LAYOUT = {
    "configs": "configs",
    "recipes": "examples/recipes",
    "environments/gsm8k": "environments/gsm8k/gsm8k",
    "environments/reverse_text": "environments/reverse_text/reverse_text",
    "environments/continuation_quality": "environments/continuation_quality/continuation_quality",
    "environments/wordle": "environments/wordle/wordle",
    "environments/math_python": "environments/math_python/math_python",
}
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
    # where the vft package's files come from: "checkout" (its working files) or "installed"
    source: str = "installed"

    def steps(self) -> list[str]:
        """The install steps in build order, as `vft plan` shows them."""
        steps = [f"debian-slim, Python {self.python_version}", f"apt: {' '.join(self.apt)}"]
        steps.append(f"uv pip (vft[{','.join(EXTRAS)}]): {', '.join(self.requirements)}")
        if self.pip:
            steps.append(f"uv pip (backend.modal.pip): {', '.join(self.pip)}")
        if self.installs:
            steps.append(f"environment.install: {', '.join(item for item, _, _ in self.installs)}")
        steps.append(f"code, added at start (editing it never rebuilds): {self.code_text()}")
        return steps

    def code_text(self) -> str:
        """The code as container paths (never this machine's) and where vft's files come from."""
        origin = (
            "the checkout's working files" if self.source == "checkout" else "the installed package"
        )
        package = (
            f"vft/ in the wheel's layout (with its configs, recipes, environments) from {origin}"
        )
        others = [_shown(src, dst) for src, dst in self.code if not _in_package(dst)]
        return "; ".join([package, *others])


def _in_package(remote: str) -> bool:
    return remote == REMOTE_PACKAGE or remote.startswith(REMOTE_PACKAGE + "/")


def _shown(local: str, remote: str) -> str:
    """A container path as the plan shows it: from the working folder, as the recipe wrote it."""
    return posixpath.relpath(remote, REMOTE_WORK) + ("/" if Path(local).is_dir() else "")


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


def package_code(root: Path) -> list[tuple[str, str]]:
    """(local folder, container folder) for the vft package in the wheel's layout.

    The same container folders, in the same order, from a checkout (the nested packages
    beside vft/, where pyproject's package-dir maps them) and from an installed vft (already
    nested): `image.py` leaves them out of the vft/ folder itself, so no file is sent twice.
    """
    checkout = is_checkout(root)
    code = [(str(root / "vft"), REMOTE_PACKAGE)]
    for nested, folder in PACKAGE_LAYOUT.items():
        local = root / folder if checkout else root / "vft" / nested
        code.append((str(local), f"{REMOTE_PACKAGE}/{nested}"))
    return code


def is_checkout(root: Path) -> bool:
    """A source checkout (pyproject beside vft/), as an editable install runs from."""
    return (root / "pyproject.toml").is_file() and (root / PACKAGE_LAYOUT["configs"]).is_dir()


def image_spec(plan: Plan, root: Path, work: Path) -> ImageSpec:
    opts = plan.backend_options
    code = package_code(root)
    # always the recipe's folder, wherever vft is installed (beside it or not)
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
        env=dict(sorted(IMAGE_ENV.items())),
        code=tuple(code),
        workdir=workdir,
        source="checkout" if is_checkout(root) else "installed",
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
    """vft's dependencies with the train and inference extras, as its pyproject pins them,
    in one canonical text whichever source they are read from.

    The pyproject is the one source of truth: changing a pin there changes this list and
    so rebuilds the dependency layer; nothing else does (not the install mode: a wheel's
    metadata spells the same pins `verifiers<0.4,>=0.3.1`, and both become that).
    """
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        found = pyproject_requirements(pyproject.read_text(encoding="utf-8"))
    else:  # vft installed from a wheel: its metadata carries the same pins
        found = metadata_requirements(installed_requires(root))
    return canonical_requirements(found)


def pyproject_requirements(text: str) -> list[str]:
    """The dependencies and EXTRAS' dependencies a pyproject.toml's text lists."""
    project = tomllib.loads(text)["project"]
    extras = project.get("optional-dependencies", {})
    found = [*project.get("dependencies", [])]
    for extra in EXTRAS:
        found += extras.get(extra, [])
    return found


def installed_requires(root: Path) -> list[str]:
    """Requires-Dist of the vft installed in `root` (site-packages), else of the vft in use."""
    from importlib import metadata

    for dist in metadata.distributions(name="vft", path=[str(root)]):
        return list(dist.requires or [])
    return list(metadata.requires("vft") or [])


def metadata_requirements(requires: list[str]) -> list[str]:
    """The Requires-Dist lines for no extra or one of EXTRAS, with the extra dropped."""
    found = []
    for req in requires:
        spec, _, marker = req.partition(";")
        extra = _EXTRA_CLAUSE.search(marker)
        if extra and extra.group(1) not in EXTRAS:
            continue
        rest = _EXTRA_CLAUSE.sub("", marker).strip() if extra else marker.strip()
        found.append(f"{spec.strip()}; {rest}" if rest else spec.strip())
    return found


# `extra == "train"`, alone or joined by `and` to the requirement's own marker
_EXTRA_CLAUSE = re.compile(r"(?:\s+and\s+)?\bextra\s*==\s*['\"]([^'\"]+)['\"](?:\s+and\s+)?")
_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[(?P<extras>[^\]]*)\])?"
    r"\s*(?P<rest>[^;]*?)\s*(?:;\s*(?P<marker>.*?))?\s*$"
)
_MARKER_TOKEN = re.compile(r"""'[^']*'|"[^"]*"|[<>=!~]=?=?|[()]|[^\s()<>=!~'"]+""")


def canonical_requirements(found: list[str]) -> list[str]:
    """Each requirement in canonical text, sorted by name, each once."""
    reqs = {canonical_requirement(r) for r in found if r.strip()}
    return sorted(reqs, key=lambda r: (re.split(r"[^a-z0-9.-]", r, maxsplit=1)[0], r))


def canonical_requirement(text: str) -> str:
    """One requirement as packaging prints it, without needing packaging: the name in its
    PEP 503 form, extras sorted, specifiers without spaces and sorted (`<0.4,>=0.3.1`),
    markers with single spaces and double quotes."""
    m = _REQUIREMENT.match(text)
    if m is None or m.group("rest").startswith("@"):
        return text.strip()  # a direct URL: kept as written
    name = canonical(m.group("name"))
    extras = sorted(
        {canonical(e.strip()) for e in (m.group("extras") or "").split(",") if e.strip()}
    )
    specs = sorted(re.sub(r"\s+", "", s) for s in m.group("rest").split(",") if s.strip())
    out = name + (f"[{','.join(extras)}]" if extras else "") + ",".join(specs)
    if m.group("marker"):
        out += "; " + canonical_marker(m.group("marker"))
    return out


def canonical_marker(marker: str) -> str:
    tokens = ['"' + t[1:-1] + '"' if t[:1] in "'\"" else t for t in _MARKER_TOKEN.findall(marker)]
    text = re.sub(r"\( | \)", lambda m: m.group(0).strip(), " ".join(tokens))
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1]  # metadata wraps a marker joined to its extra in parentheses
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


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
