"""What a user sees before anything is built or paid for: `vft plan --backend modal`, a GPU
shape Modal does not offer, a run without a Modal login, a missing secret.

The commands run as users run them (real subprocesses); no Modal account is needed,
since every check here fails (or passes) before Modal's servers would be asked.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
import sys
from pathlib import Path

import pytest

from vft.backends.modal import preflight
from vft.backends.modal.spec import PROJECT_ROOT, REMOTE_WORK, function_spec, plan_in_container
from vft.core.errors import PreflightError
from vft.launch import prepare
from vft.testing import write_user_project

HEAVY = ("torch", "vllm", "modal", "transformers", "deepspeed", "trl")


def no_login_env(home: Path) -> dict[str, str]:
    """This machine's environment with every way Modal could find a token removed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    home.mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home), "MODAL_CONFIG_PATH": str(home / "modal.toml")}


def vft(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vft", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's folder: a recipe and a local environment package, outside the vft checkout."""
    return write_user_project(tmp_path, '[backend.modal]\nsecrets = ["huggingface"]\n')


def test_plan_shows_image_gpu_volume_secrets_and_cost_without_importing_modal(
    project: Path,
) -> None:
    code = (
        "import sys\nfrom vft.cli import main\n"
        "try:\n    main(['plan', 'r.toml', '--backend', 'modal'])\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=project, timeout=120
    )
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())  # rich wraps long rows
    assert "HEAVY []" in text
    assert "image: debian-slim, Python 3.11; apt: git ninja-build; uv pip" in text
    assert "trl==1.16.0" in text and "deepspeed==0.19.8" in text and "vllm<0.32,>=0.22" in text
    assert "environment.install: environments/my_env" in text
    assert 'gpu: gpu="H100:8"' in text
    assert "volume: vft-outputs at /outputs; run folder /outputs/exp/attempt-N" in text
    assert "secrets: huggingface" in text
    assert "cost: $35.16/h (8 x H100 $31.60 + CPU/memory $3.56, at modal's prices" in text
    assert "container: cpu=32 cores, memory=256 GiB, timeout=24 h, app vft-exp" in text


def test_run_without_a_modal_login_is_one_line_and_exit_2(project: Path, tmp_path: Path) -> None:
    out = vft("run", "r.toml", "--backend", "modal", cwd=project, env=no_login_env(tmp_path / "h"))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines == [
        "vft: error: not logged in to Modal "
        "(run `modal setup`, or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET)"
    ]
    assert "Traceback" not in out.stdout + out.stderr
    assert not (project / "outputs").exists()  # nothing half-started


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["resources.gpus=A10G:8"],
            "resources.gpus: backend 'modal' gives at most 4 x A10G per node, got A10G:8",
        ),
        (
            ["resources.gpus=A100-80GB:8", "resources.nodes=2"],
            "resources.gpus: backend 'modal' cannot give A100-80GB:8: a Modal cluster "
            "(nodes = 2) needs whole 8-GPU hosts of H100, H200, B200, e.g. 'H100:8'",
        ),
        (
            ["resources.gpus=H100:4", "resources.nodes=2"],
            "resources.gpus: backend 'modal' cannot give H100:4: a Modal cluster "
            "(nodes = 2) needs whole 8-GPU hosts of H100, H200, B200, e.g. 'H100:8'",
        ),
        (
            ["resources.nodes=33"],
            "resources.nodes: backend 'modal' allows at most 32 nodes",
        ),
    ],
)
def test_gpu_shapes_modal_does_not_offer_are_refused_before_login(
    project: Path, tmp_path: Path, overrides: list[str], message: str
) -> None:
    """Refused with no login at all: the GPU check comes before Modal is asked anything."""
    sets = [a for o in overrides for a in ("--set", o)]
    for command in ("plan", "run"):
        out = vft(
            command,
            "r.toml",
            "--backend",
            "modal",
            *sets,
            cwd=project,
            env=no_login_env(tmp_path / "h"),
        )
        assert out.returncode == 2, out.stderr
        assert out.stderr.strip().startswith(f"vft: error: {message}"), command
        assert len(out.stderr.strip().splitlines()) == 1


def test_a_cpu_plan_cannot_be_a_cluster(plan_for) -> None:
    plan = plan_for(PROJECT_ROOT / "examples" / "recipes" / "smoke.toml", "modal")
    from dataclasses import replace

    with pytest.raises(PreflightError, match="Modal clusters need GPUs"):
        preflight.check_gpus(replace(plan, nodes=2))


def test_missing_secret_says_the_exact_command() -> None:
    assert preflight.missing_secret("wandb") == (
        "backend.modal.secrets: Modal secret 'wandb' does not exist; create it with: "
        "modal secret create wandb WANDB_API_KEY=<your key>  "
        "(or drop it from [backend.modal] secrets)"
    )
    assert "modal secret create huggingface HF_TOKEN=<your key>" in preflight.missing_secret(
        "huggingface"
    )
    assert "modal secret create my-s3 KEY=VALUE" in preflight.missing_secret("my-s3")


def test_a_script_is_sent_where_the_plan_expects_it(project: Path, tmp_path_factory) -> None:
    """The script's path starts from the recipe's folder; the container gets it at the
    same place from its working folder, so the plan's argv holds there unchanged."""
    (project / "train.py").write_text("print('hi')\n")
    plan = prepare(project / "r.toml", ('trainer.script="train.py"',), "modal").plan
    spec = function_spec(plan)
    preflight.check_paths(plan, spec)
    assert spec.image.workdir == REMOTE_WORK
    assert (str(project / "train.py"), f"{REMOTE_WORK}/train.py") in spec.image.code
    # beside the recipe's folder: sent one folder up from the working folder
    (project / "sub").mkdir()
    text = (project / "r.toml").read_text()
    (project / "sub" / "r.toml").write_text(text.replace('"environments/', '"../environments/'))
    plan = prepare(project / "sub" / "r.toml", ('trainer.script="../train.py"',), "modal").plan
    spec = function_spec(plan)
    preflight.check_paths(plan, spec)
    remote = posixpath.normpath(f"{REMOTE_WORK}/../train.py")
    assert (str(project / "train.py"), remote) in spec.image.code
    assert plan_in_container(plan, spec).run.workdir == REMOTE_WORK
    # inside a folder that is sent anyway: not sent twice
    (project / "examples").mkdir()
    (project / "examples" / "train.py").write_text("print('hi')\n")
    plan = prepare(project / "r.toml", ('trainer.script="examples/train.py"',), "modal").plan
    spec = function_spec(plan)
    assert (str(project / "examples"), f"{REMOTE_WORK}/examples") in spec.image.code
    assert not any(dst.endswith("examples/train.py") for _, dst in spec.image.code)
    # an absolute path has no place in the container
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "train.py"
    elsewhere.write_text("print('hi')\n")
    plan = prepare(project / "r.toml", (f'trainer.script="{elsewhere}"',), "modal").plan
    with pytest.raises(PreflightError, match=r"trainer.script: '/.*' is not sent to Modal"):
        preflight.check_paths(plan, function_spec(plan))


def test_bad_backend_options_are_one_line(project: Path) -> None:
    out = vft(
        "plan",
        "r.toml",
        "--backend",
        "modal",
        "--set",
        "backend.modal.timeout_hours=30",
        cwd=project,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("vft: error: backend.modal.timeout_hours:")
    out = vft(
        "plan",
        "r.toml",
        "--backend",
        "modal",
        "--set",
        'backend.modal.pip=["--index-url=x"]',
        cwd=project,
    )
    assert out.returncode == 2
    assert "backend.modal.pip" in out.stderr and "is not a package name" in out.stderr
