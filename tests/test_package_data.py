"""vft's package data ships in the wheel and is read through `vft.core.resources`.

A wheel install has no checkout beside it: the GPU catalog, the accelerate templates, the
example recipes (the smoke one is what `vft run` runs with no argument) and the starter
recipe must be inside the wheel, where `importlib.resources` finds them.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from vft.core import resources

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "examples" / "recipes").glob("*.toml"))

# in the wheel -> in the checkout
SHIPPED = {
    "vft/configs/gpus.toml": "configs/gpus.toml",
    "vft/configs/accelerate/zero2.yaml": "configs/accelerate/zero2.yaml",
    "vft/configs/accelerate/zero3.yaml": "configs/accelerate/zero3.yaml",
    "vft/data/starter.toml": "vft/data/starter.toml",
    **{f"vft/recipes/{r.name}": f"examples/recipes/{r.name}" for r in RECIPES},
}

# not copied for the build: a stale build/lib would put old modules in the wheel
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "outputs", "*.egg-info", "__pycache__", ".*_cache"
)


def _isolation_flags() -> list[str]:
    """Build with this venv's setuptools when it is new enough: faster, and no index."""
    try:
        major = int(importlib.metadata.version("setuptools").split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        return []
    return ["--no-build-isolation"] if major >= 77 else []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The vft wheel, built by pip from a copy of the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src, dist = tmp / "src", tmp / "dist"
    shutil.copytree(ROOT, src, ignore=_NOT_SOURCE)
    argv = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *_isolation_flags()]
    done = subprocess.run(
        [*argv, "-w", str(dist), str(src)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = dist.glob("vft-*.whl")
    return path


def test_the_wheel_ships_the_package_data(wheel: Path) -> None:
    assert any(n.endswith("smoke.toml") for n in SHIPPED)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        missing = sorted(set(SHIPPED) - names)
        assert not missing, f"not in {wheel.name}: {missing}"
        for inside, source in SHIPPED.items():
            assert zf.read(inside) == (ROOT / source).read_bytes(), inside


def test_the_wheel_ships_every_vft_module(wheel: Path) -> None:
    """pyproject lists vft's packages by hand (package-dir renames need it): none forgotten."""
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "vft").rglob("*.py")}
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    missing = sorted(modules - names)
    assert not missing, f"add their packages to [tool.setuptools] packages: {missing}"
    assert not {n for n in names if n.startswith(("configs/", "examples/"))}


def test_plan_and_init_run_from_the_unpacked_wheel(wheel: Path, tmp_path: Path) -> None:
    """`vft plan` and `vft init` with vft imported from the wheel, in a folder far from ROOT."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "1000"}

    def vft(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "vft", *args]
        return subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=120)

    probe = subprocess.run(
        [sys.executable, "-c", "import vft.core.resources as r; print(r.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip().startswith(str(site)), probe.stdout + probe.stderr

    smoke = str(ROOT / "examples" / "recipes" / "smoke.toml")
    done = vft("plan", smoke, "--set", 'resources.gpus="A100-80GB:2"', "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["gpu_type"] == "A100-80GB"  # the catalog was read
    done = vft("init", "recipe.toml")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (work / "recipe.toml").read_text() == (ROOT / "vft/data/starter.toml").read_text()


def test_resources_read_the_package_data() -> None:
    assert resources.gpu_catalog_text() == (ROOT / "configs/gpus.toml").read_text()
    for name in ("zero2", "zero3"):
        expected = (ROOT / f"configs/accelerate/{name}.yaml").read_text()
        assert resources.accelerate_template(name) == expected
    assert set(resources.accelerate_templates()) == {"zero2", "zero3"}
    assert resources.recipe_names() == sorted(r.stem for r in RECIPES)
    for r in RECIPES:
        assert resources.recipe_text(r.stem) == r.read_text()
    assert (
        resources.smoke_recipe().read_text() == (ROOT / "examples/recipes/smoke.toml").read_text()
    )
    smoke = resources.smoke_recipe_file()
    assert smoke.is_file() and smoke.read_text() == resources.smoke_recipe().read_text()
    assert resources.starter_recipe_text() == (ROOT / "vft/data/starter.toml").read_text()


def test_resources_name_what_is_missing() -> None:
    with pytest.raises(ValueError, match="zero2, zero3"):
        resources.accelerate_template("zero1")
    with pytest.raises(FileNotFoundError, match="smoke"):
        resources.recipe_text("no-such-recipe")
