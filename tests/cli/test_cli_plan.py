"""`vft plan`, `vft init`, `vft schema` as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vft.testing import run_vft, write_user_project

HEAVY = ("torch", "vllm", "modal", "transformers", "deepspeed", "trl", "datasets", "verifiers")


def vft(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_vft(*args, cwd=cwd, timeout=60)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a recipe whose environment is a local package, as users lay it out."""
    return write_user_project(tmp_path)


def test_plan_table(project):
    out = vft("plan", "r.toml", cwd=project)
    assert out.returncode == 0, out.stderr
    assert (
        "exp on local: H100:8 x 1 node(s), inference dp=6 tp=1, trainer 2 process(es)" in out.stdout
    )
    assert "vllm serve willcb/Qwen3-1.7B" in out.stdout
    assert "cost: unknown" in out.stdout  # own hardware: no price unless the recipe sets one
    priced = vft("plan", "r.toml", "--set", "resources.usd_per_hour=31.6", cwd=project)
    assert "$31.60/h" in priced.stdout, priced.stderr


def test_plan_json_is_the_contract(project):
    out = vft(
        "plan",
        "r.toml",
        "--json",
        "--backend",
        "modal",
        "--set",
        "trainer.max_steps=5",
        cwd=project,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["version"] == 1 and data["backend"] == "modal"
    assert data["recipe"]["trainer"]["max_steps"] == 5
    assert data["backend_options"]["volume"] == "vft-outputs"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--set", "resources.gpus=A100:2"], "resources.gpus: 'A100' is ambiguous"),
        (["--set", "trainer.learnig_rate=1"], "did you mean 'learning_rate'"),
        (["--set", "resources.gpus=H100:16", "--backend", "modal"], "use nodes = 2 with H100:8"),
        (["--set", "resources.inference_gpus=8"], "leaves no GPU for the trainer"),
        (["--set", "trainer.num_generations=7"], "trainer.num_generations: 7 does not divide"),
        (["--set", "trainer.script=nope.py"], "trainer.script: 'nope.py' does not exist"),
        (["--set", 'environment.install=["missing"]'], "environment.install: 'missing'"),
        (["--set", "environment.install=[]"], "environment.id: 'my_env' is not installed"),
        (["--backend", "nosuch"], "unknown backend 'nosuch'"),
        (["--set", "backend.modal.timeout_hours=48"], "backend.modal.timeout_hours"),
        (["--set", "backend.modal.volum=x"], "backend.modal.volum: unknown key"),
    ],
)
def test_errors_are_one_line_exit_2(project, args, fragment):
    out = vft("plan", "r.toml", *args, cwd=project)
    assert out.returncode == 2, out.stdout + out.stderr
    assert fragment in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr


def test_missing_recipe_file(tmp_path):
    out = vft("plan", "nope.toml", cwd=tmp_path)
    assert out.returncode == 2
    assert "does not exist" in out.stderr and "Traceback" not in out.stderr


def test_init_then_plan(tmp_path):
    out = vft("init", "new.toml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    again = vft("init", "new.toml", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    from vft.core.recipe.schema import load_recipe

    recipe = load_recipe(tmp_path / "new.toml")
    assert recipe.resources.gpus == "A100-80GB:2"


def test_schema_is_json_schema():
    out = vft("schema")
    schema = json.loads(out.stdout)
    assert schema["title"] == "Recipe"
    assert {"name", "model", "environment", "resources"} <= set(schema["required"])


def test_plan_path_imports_nothing_heavy(project):
    code = textwrap.dedent(
        f"""
        import sys
        from vft.cli import main
        try:
            main(["plan", "r.toml", "--backend", "modal"])
        finally:
            heavy = [m for m in {HEAVY!r} if m in sys.modules]
            print("HEAVY=" + ",".join(heavy), file=sys.stderr)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=project, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "HEAVY=\n" in out.stderr or out.stderr.rstrip().endswith("HEAVY="), out.stderr


def test_help_imports_no_plugin_or_heavy_module():
    code = textwrap.dedent(
        """
        import sys
        from vft.cli import main
        try:
            main(["--help"])
        except SystemExit:
            pass
        loaded = sorted(m for m in sys.modules if m.startswith(("vft.backends", "vft.core.plugins",
                        "pydantic", "torch", "modal", "rich")))
        print("LOADED=" + ",".join(loaded))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().endswith("LOADED="), out.stdout
