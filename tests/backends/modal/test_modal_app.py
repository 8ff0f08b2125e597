"""The real Modal objects for every example recipe, built offline.

Modal's servers cannot be reached from here (no account, no network to Modal): that is
the boundary. Everything on this side of it is real: `modal.App`, `modal.Function`,
`modal.Image`, `modal.Volume`, `modal.Secret` as vft builds them, read back through
`Function.info()` (which needs no server before hydration) and through the Dockerfile
commands Modal itself would send for each image layer.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from vft.backends.modal.app import build_app
from vft.backends.modal.spec import (
    OUTPUTS,
    PACKAGE_LAYOUT,
    PROJECT_ROOT,
    REMOTE_INSTALL,
    REMOTE_ROOT,
    REMOTE_WORK,
    function_spec,
    requirements,
)
from vft.launch import prepare

RECIPES = sorted((PROJECT_ROOT / "examples" / "recipes").glob("*.toml"))
BUILDER = "2025.06"  # a Modal image builder version this modal release supports


def plan_for(recipe: Path, *overrides: str):
    # environments/ is written by another part of the project; the paths are not needed here
    return prepare(recipe, overrides, "modal", check_paths=False).plan


def _cells(fn: Any) -> dict[str, Any]:
    cells = (c.cell_contents for c in fn.__closure__ or ())
    return dict(zip(fn.__code__.co_freevars, cells, strict=True))


def _sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _mount_files(mount: Any) -> dict[str, str]:
    """remote path -> content hash of what a mount sends (a folder not written yet: noted)."""
    files: dict[str, str] = {}
    for entry in mount._entries:
        try:
            files |= {str(remote): _sha(local) for local, remote in entry.get_files_to_upload()}
        except FileNotFoundError as exc:  # an example's environments/ folder may not exist yet
            files[f"missing: {exc}"] = ""
    return files


def _mount_uploads(mount: Any) -> list[tuple[str, str]]:
    """(local file, remote path) for each file a mount sends, as Modal lists them."""
    return [
        (str(local), str(remote))
        for entry in mount._entries
        for local, remote in entry.get_files_to_upload()
    ]


def layers(image: Any) -> list[dict[str, Any]]:
    """Every layer of a modal.Image, base first: build steps with the Dockerfile commands
    and context-file hashes Modal would send, and files added at container start (with
    `uploads`, the local file behind each remote path, for a mount whose files exist).

    Reads Modal's lazy loaders (private attributes): the only offline view of a layer.
    """
    from modal._utils.async_utils import synchronizer

    img = synchronizer._translate_in(image)
    found: list[dict[str, Any]] = []
    while img is not None:
        cells = _cells(img._load)
        if "mount" in cells:  # copy=False: not a build step
            files = _mount_files(cells["mount"])
            uploads = [] if any(p.startswith("missing") for p in files) else None
            layer = {"kind": "start", "files": files}
            layer["uploads"] = uploads if uploads is not None else _mount_uploads(cells["mount"])
            found.append(layer)
            img = cells["base_image"]
            continue
        spec = cells["dockerfile_function"](BUILDER)
        context_mount = (cells.get("context_mount_function") or (lambda v: None))(BUILDER)
        found.append(
            {
                "kind": "build",
                "commands": list(spec.commands),
                "context": {k: _sha(v) for k, v in spec.context_files.items()},
                "copied": _mount_files(context_mount) if context_mount is not None else None,
            }
        )
        img = (cells.get("base_images") or {}).get("base")
    return found[::-1]


def image_of(function: Any) -> Any:
    """The image a modal.Function runs in (its private spec: no public offline accessor)."""
    from modal._utils.async_utils import synchronizer

    return synchronizer._translate_out(synchronizer._translate_in(function)._spec.image)


def build_steps(image: Any) -> list[dict[str, Any]]:
    return [layer for layer in layers(image) if layer["kind"] == "build"]


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_function_info_for_every_example(recipe: Path) -> None:
    plan = plan_for(recipe)
    spec = function_spec(plan)
    app, function = build_app(spec)
    info = function.info()
    if plan.is_cpu:
        assert info.gpus == []
    else:
        assert info.gpus == [(plan.gpu_type.upper(), plan.gpus_per_node)]
    assert info.timeout == 24 * 3600
    assert set(info.volumes) == {OUTPUTS}
    assert info.volumes[OUTPUTS].name == "vft-outputs"
    assert info.secrets == [
        "modal.Secret.from_name('wandb')",
        "modal.Secret.from_name('huggingface')",
    ]
    assert info.cluster_info is None  # every example is one node
    assert info.max_retries == 2  # Modal's default resources.restarts
    assert info.cpu == spec.cpu and info.memory_mib == spec.memory_gib * 1024
    assert app.name == f"vft-{plan.name}"
    # sized for the GPUs: 4 cores and 32 GiB per GPU
    if not plan.is_cpu:
        assert info.cpu == 4 * plan.gpus_per_node
        assert info.memory_mib == 32 * 1024 * plan.gpus_per_node


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_image_install_steps_and_pins(recipe: Path) -> None:
    plan = plan_for(recipe)
    _, function = build_app(function_spec(plan))
    steps = build_steps(image_of(function))
    commands = [c for step in steps for c in step["commands"]]
    assert commands[0].startswith("FROM python:3.11")
    assert "RUN apt-get install -y git ninja-build" in commands
    uv = [c for c in commands if "/.uv/uv pip install" in c]
    deps = uv[0]
    for pin in ("trl==1.16.0", "deepspeed==0.19.8", "'vllm<0.32,>=0.22'", "'torch>=2.4'"):
        assert pin in deps, pin
    assert "COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /.uv/uv" in commands
    assert any(c.startswith("ENV PYTHONPATH=/opt/vft") for c in commands)
    # processes start in the recipe's folder (examples/recipes/, not the project root)
    assert f"WORKDIR {REMOTE_WORK}" in commands
    # the recipe's environment.install packages are copied in and installed, in that order
    installs = [f"{REMOTE_INSTALL}/{i}-{Path(p).name}" for i, p in enumerate(plan.install)]
    if installs:
        assert all(remote in uv[-1] for remote in installs)
        assert uv[-1] != deps
    else:
        assert len(uv) == 1
    # the project's code is added at start, after every build step
    kinds = [layer["kind"] for layer in layers(image_of(function))]
    assert kinds == sorted(kinds)  # "build" < "start": no build step after the code
    started = {
        p
        for layer in layers(image_of(function))
        if layer["kind"] == "start"
        for p in layer["files"]
    }
    # vft in the wheel's layout, its nested packages included, whatever the install
    for nested in PACKAGE_LAYOUT:
        assert any(p.startswith(f"{REMOTE_ROOT}/vft/{nested}/") for p in started), nested
    assert f"{REMOTE_ROOT}/vft/core/node/supervisor.py" in started
    assert not any("__pycache__" in p for p in started)


def test_requirements_are_vfts_own_pins() -> None:
    reqs = requirements(PROJECT_ROOT)
    assert "trl==1.16.0" in reqs and "deepspeed==0.19.8" in reqs
    assert "vllm<0.32,>=0.22" in reqs
    assert not any(r.startswith(("modal", "pytest", "ruff")) for r in reqs)  # not [modal], [dev]


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the project with one environment package, as a user's checkout would be."""
    root = tmp_path / "project"
    for d in ("vft", "configs", "examples"):
        shutil.copytree(PROJECT_ROOT / d, root / d, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    env = root / "environments" / "toy_env"
    env.mkdir(parents=True)
    (env / "pyproject.toml").write_text('[project]\nname = "toy-env"\nversion = "0.1"\n')
    (env / "toy_env.py").write_text("def load_environment(**kw):\n    return None\n")
    return root


def _image_layers(root: Path, *overrides: str) -> list[dict[str, Any]]:
    plan = plan_for(
        PROJECT_ROOT / "examples" / "recipes" / "gsm8k.toml",
        'environment.install=["environments/toy_env"]',
        *overrides,
    )
    _, function = build_app(function_spec(plan, project_root=root, workdir=root))
    return layers(image_of(function))


def test_editing_code_leaves_every_build_step_unchanged(project_copy: Path) -> None:
    before = _image_layers(project_copy)
    target = project_copy / "vft" / "core" / "plan.py"
    target.write_text(target.read_text() + "\n# an edit\n")
    (project_copy / "examples" / "recipes" / "gsm8k.toml").write_text("# edited\n")
    after = _image_layers(project_copy)
    assert [x for x in before if x["kind"] == "build"] == [x for x in after if x["kind"] == "build"]
    # ... while the container does get the edit, at start
    changed = [
        p
        for b, a in zip(before, after, strict=True)
        if b["kind"] == "start"
        for p in b["files"]
        if b["files"][p] != a["files"].get(p)
    ]
    assert f"{REMOTE_ROOT}/vft/core/plan.py" in changed


def test_a_dependency_change_rebuilds_from_the_dependency_step(project_copy: Path) -> None:
    before = build_steps_of(project_copy)
    pyproject = project_copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"trl==1.16.0"', '"trl==1.17.0"'))
    after = build_steps_of(project_copy)
    first_changed = next(i for i, (b, a) in enumerate(zip(before, after, strict=True)) if b != a)
    assert any("trl==1.17.0" in c for c in after[first_changed]["commands"])
    assert before[:first_changed] == after[:first_changed]  # Python and apt stay cached


def test_editing_an_installed_environment_rebuilds_only_its_own_steps(project_copy: Path) -> None:
    before = build_steps_of(project_copy)
    (project_copy / "environments" / "toy_env" / "toy_env.py").write_text("X = 1\n")
    after = build_steps_of(project_copy)
    changed = [i for i, (b, a) in enumerate(zip(before, after, strict=True)) if b != a]
    assert changed and all(before[i]["copied"] is not None for i in changed)
    deps = next(i for i, s in enumerate(before) if any("trl==" in c for c in s["commands"]))
    assert min(changed) > deps


def build_steps_of(root: Path) -> list[dict[str, Any]]:
    return [x for x in _image_layers(root) if x["kind"] == "build"]


def test_multi_node_plan_is_a_cluster(tmp_path: Path) -> None:
    plan = plan_for(PROJECT_ROOT / "examples" / "recipes" / "wordle-4b.toml", "resources.nodes=2")
    _, function = build_app(function_spec(plan))
    info = function.info()
    assert info.cluster_info is not None and info.cluster_info.size == 2
    assert info.gpus == [("H100", 8)]


def test_recipe_options_reach_the_function() -> None:
    plan = plan_for(
        PROJECT_ROOT / "examples" / "recipes" / "gsm8k.toml",
        'backend.modal.secrets=["hf-private"]',
        "backend.modal.timeout_hours=2.5",
        'backend.modal.volume="my-runs"',
        'backend.modal.app_name="gsm8k-sweep"',
        'backend.modal.pip=["flash-attn==2.8.3"]',
        "backend.modal.cpu=6",
        "backend.modal.memory_gib=48",
    )
    app, function = build_app(function_spec(plan))
    info = function.info()
    assert info.secrets == ["modal.Secret.from_name('hf-private')"]
    assert info.timeout == 9000
    assert info.volumes[OUTPUTS].name == "my-runs"
    assert app.name == "gsm8k-sweep"
    assert (info.cpu, info.memory_mib) == (6.0, 48 * 1024)
    commands = [c for s in build_steps(image_of(function)) for c in s["commands"]]
    assert any("flash-attn==2.8.3" in c for c in commands)


def test_no_secrets() -> None:
    plan = plan_for(
        PROJECT_ROOT / "examples" / "recipes" / "smoke.toml", "backend.modal.secrets=[]"
    )
    _, function = build_app(function_spec(plan))
    assert function.info().secrets == []
