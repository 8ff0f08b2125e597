"""`vft plan -b local` warns about a GPU plan this machine cannot run; `vft init` prints
next steps that suit the machine. Real `vft` processes; nvidia-smi faked where a GPU is
needed (the boundary this machine cannot reach), absent where none is."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.cli.test_run_cli import A100, GPU, SMOKE, fake_nvidia_smi
from vft.testing import run_vft

NO_DRIVER = pytest.mark.skipif(
    shutil.which("nvidia-smi") is not None, reason="this machine has a GPU driver"
)
WAYS_OUT = (
    'so `vft run` here will refuse it; use --backend modal, or resources.gpus = "cpu" '
    'with the smoke-sized model (model.name = "vft-tiny")'
)


def gpu_warnings(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("warning: resources.gpus")]


def with_fake_gpus(tmp_path: Path, count: int) -> dict[str, str]:
    rows = [f"{i}, GPU-{i}, {A100}, 80000" for i in range(count)]
    fake_nvidia_smi(tmp_path, rows, [])
    return {"PATH": f"{tmp_path}:{os.environ['PATH']}"}


@NO_DRIVER
def test_plan_of_a_gpu_recipe_without_gpus_warns_in_one_line(tmp_path):
    planned = run_vft("plan", SMOKE, "--set", GPU, cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert gpu_warnings(planned.stdout) == [
        "warning: resources.gpus: the plan needs 2 x A100-80GB, this machine has no NVIDIA "
        f"GPU (nvidia-smi not found on PATH), {WAYS_OUT}"
    ]
    modal = run_vft("plan", SMOKE, "--set", GPU, "-b", "modal", cwd=tmp_path)
    assert modal.returncode == 0, modal.stderr
    assert gpu_warnings(modal.stdout) == []  # not this machine's business
    cpu = run_vft("plan", SMOKE, cwd=tmp_path)
    assert cpu.returncode == 0 and gpu_warnings(cpu.stdout) == [], cpu.stderr


def test_plan_warns_of_too_few_gpus_and_not_of_enough(tmp_path):
    one = run_vft("plan", SMOKE, "--set", GPU, cwd=tmp_path, env=with_fake_gpus(tmp_path, 1))
    assert one.returncode == 0, one.stderr
    assert gpu_warnings(one.stdout) == [
        "warning: resources.gpus: the plan needs 2 x A100-80GB, this machine has 1 visible "
        f"(NVIDIA A100-SXM4-80GB), {WAYS_OUT}"
    ]
    env = with_fake_gpus(tmp_path, 2)
    two = run_vft("plan", SMOKE, "--set", GPU, cwd=tmp_path, env=env)
    assert two.returncode == 0 and gpu_warnings(two.stdout) == [], two.stderr
    hidden = run_vft(
        "plan", SMOKE, "--set", GPU, cwd=tmp_path, env={**env, "CUDA_VISIBLE_DEVICES": "1"}
    )
    assert "this machine has 1 visible" in gpu_warnings(hidden.stdout)[0]


@NO_DRIVER
def test_init_without_gpus_prints_modal_and_the_cpu_smoke_run(tmp_path):
    done = run_vft("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "wrote recipe.toml, sized for 2 x A100-80GB; this machine has no NVIDIA GPU "
        "(nvidia-smi not found on PATH). Next:",
        "  vft plan recipe.toml -b modal   # the same recipe on Modal's GPUs",
        "  vft run                         # the CPU smoke run: a tiny model, ~30 s",
    ]
    assert (tmp_path / "recipe.toml").is_file()


def test_init_with_enough_gpus_says_plan_it(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    done = run_vft("init", cwd=work, env=with_fake_gpus(tmp_path, 2))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["wrote recipe.toml; check it with: vft plan recipe.toml"]
