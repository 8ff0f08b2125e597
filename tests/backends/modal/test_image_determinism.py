"""The Modal image is the same whether vft runs from a checkout or from a wheel.

Two installs are made of real files: a copy of the checkout (pyproject.toml beside vft/,
as an editable install runs from) and a wheel-like copy (vft/ with its nested packages
and its metadata, no pyproject). Both must give the same requirement text, the same
build steps and the same files at the same container paths.

Modal's servers cannot be reached from here: the tests stop at the image definition
(`modal.Image` built offline, read back through the layer loaders in test_modal_app.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.backends.modal.test_modal_app import image_of, layers
from vft.backends.modal.app import build_app
from vft.backends.modal.spec import (
    PACKAGE_LAYOUT,
    REMOTE_ROOT,
    canonical_requirement,
    canonical_requirements,
    function_spec,
    metadata_requirements,
    pyproject_requirements,
    requirements,
)
from vft.launch import prepare

ROOT = Path(__file__).resolve().parents[3]
SKIP = shutil.ignore_patterns("__pycache__")


def _package_dir() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]["package-dir"]


def _installed_metadata() -> Path:
    """The folder of vft's installed metadata: the dist-info pip wrote into this venv."""
    found = sorted(Path(sysconfig.get_paths()["purelib"]).glob("vft-*.dist-info"))
    if not found:
        pytest.skip("vft is not installed in this environment")
    return found[0]


def _checkout(tmp: Path) -> Path:
    root = tmp / "checkout"
    for d in ("vft", "configs", "environments", "examples"):
        shutil.copytree(ROOT / d, root / d, ignore=SKIP)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def _wheel_like(tmp: Path, metadata: Path) -> Path:
    """vft's package, its nested packages and `metadata` in a site folder, as a wheel installs."""
    lib = tmp / "site"
    shutil.copytree(ROOT / "vft", lib / "vft", ignore=SKIP)
    shutil.copytree(metadata, lib / metadata.name)
    for package, folder in _package_dir().items():
        target = lib.joinpath(*package.split("."))
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(ROOT / folder, target, ignore=SKIP)
    return lib


@pytest.fixture
def installs(tmp_path: Path) -> tuple[Path, Path]:
    return _checkout(tmp_path / "a"), _wheel_like(tmp_path / "b", _installed_metadata())


def test_the_package_layout_is_pyprojects_package_dir() -> None:
    assert {f"vft.{k.replace('/', '.')}": v for k, v in PACKAGE_LAYOUT.items()} == _package_dir()


def test_requirements_read_the_same_from_pyproject_and_from_metadata(tmp_path: Path) -> None:
    from_pyproject = requirements(_checkout(tmp_path / "a"))
    from_dist_info = requirements(_wheel_like(tmp_path / "b", _installed_metadata()))
    assert from_pyproject == from_dist_info
    assert "verifiers<0.4,>=0.3.1" in from_pyproject and "vllm<0.32,>=0.22" in from_pyproject
    assert from_pyproject == sorted(from_pyproject)
    if (ROOT / "vft.egg-info").is_dir():  # setuptools' other metadata form, extras reordered
        assert requirements(_wheel_like(tmp_path / "c", ROOT / "vft.egg-info")) == from_pyproject


def test_a_requirement_has_one_text_however_it_is_spelled() -> None:
    written = "Foo_Bar [B, a] >= 1.0 , < 2 ; python_version<'3.12' or os_name == 'nt'"
    installed = (
        'foo-bar[a,b]<2,>=1.0; (python_version < "3.12" or os_name == "nt") and extra == "train"'
    )
    assert canonical_requirements(pyproject_requirements(_pyproject(written))) == (
        canonical_requirements(metadata_requirements([installed, 'x; extra == "dev"']))
    )
    assert canonical_requirement(written) == (
        'foo-bar[a,b]<2,>=1.0; python_version < "3.12" or os_name == "nt"'
    )
    assert canonical_requirement("x @ https://example.org/x.whl") == "x @ https://example.org/x.whl"


def _pyproject(requirement: str) -> str:
    return f'[project]\nname = "p"\n[project.optional-dependencies]\ntrain = ["{requirement}"]\n'


def _spec(root: Path, work: Path) -> Any:
    recipe = ROOT / "examples" / "recipes" / "gsm8k.toml"
    plan = prepare(recipe, (), "modal", check_paths=False).plan
    return function_spec(plan, project_root=root, workdir=work)


def test_the_description_differs_only_in_the_named_source(installs, tmp_path: Path) -> None:
    checkout, wheel = installs
    work = tmp_path / "work"
    work.mkdir()
    a, b = _spec(checkout, work).image, _spec(wheel, work).image
    assert (a.source, b.source) == ("checkout", "installed")
    assert a.steps()[:-1] == b.steps()[:-1]
    named = a.steps()[-1].replace("the checkout's working files", "the installed package")
    assert named == b.steps()[-1]
    assert [dst for _, dst in a.code] == [dst for _, dst in b.code]
    assert (a.requirements, a.env, a.workdir) == (b.requirements, b.env, b.workdir)
    for step in [*a.steps(), *b.steps()]:
        assert str(tmp_path) not in step  # no path of this machine


def test_both_installs_build_the_same_image_and_send_the_same_files(installs, tmp_path) -> None:
    checkout, wheel = installs
    work = tmp_path / "work"
    work.mkdir()
    a = layers(image_of(build_app(_spec(checkout, work))[1]))
    b = layers(image_of(build_app(_spec(wheel, work))[1]))
    assert [x for x in a if x["kind"] == "build"] == [x for x in b if x["kind"] == "build"]
    sent_a = _sent(a)
    assert sent_a == _sent(b)
    assert f"{REMOTE_ROOT}/vft/configs/gpus.toml" in sent_a
    assert f"{REMOTE_ROOT}/vft/environments/gsm8k/__init__.py" in sent_a
    assert not any(str(tmp_path) in c for x in a if x["kind"] == "build" for c in x["commands"])


def _sent(found: list[dict[str, Any]]) -> dict[str, str]:
    files: dict[str, str] = {}
    for layer in found:
        if layer["kind"] == "start":
            assert not set(files) & set(layer["files"]), "a file sent twice"
            files |= layer["files"]
    return files


def test_the_container_finds_vfts_packaged_data_from_either_install(installs, tmp_path) -> None:
    """What Modal would send, laid out under a folder standing in for the container's /:
    vft.configs, vft.recipes and a built-in environment import from REMOTE_ROOT alone."""
    code = (
        "import importlib.util as u, vft.core.resources as r\n"
        "r.gpu_catalog_text(); r.accelerate_template('zero2'); assert 'smoke' in r.recipe_names()\n"
        "assert u.find_spec('vft.environments.gsm8k') is not None\n"
    )
    for name, root in zip(("a", "b"), installs, strict=True):
        container = tmp_path / f"container-{name}"
        for local, remote in _uploads(layers(image_of(build_app(_spec(root, tmp_path))[1]))):
            target = container / remote.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(local, target)
        env = {"PYTHONPATH": str(container / REMOTE_ROOT.lstrip("/"))}
        done = subprocess.run(
            [sys.executable, "-S", "-c", code],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 0, (name, done.stderr)


def _uploads(found: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [pair for layer in found if layer["kind"] == "start" for pair in layer["uploads"]]
