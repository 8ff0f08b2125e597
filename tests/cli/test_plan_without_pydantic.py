"""`vft plan` and `vft backends` never import pydantic (about 100 ms of start-up): the
recipe and vft's own backend options are validated by vft.core.recipe.tables.

Installed plugins are left out (VFT_DISABLE_PLUGIN_AUTOLOAD): a plugin whose options
model is pydantic imports pydantic itself, as it may. vft-slurm, whose options are a
table too, is checked from its source when it is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPE = "examples/recipes/gsm8k.toml"

#: run vft's CLI in-process, then say which of the heavy validation modules got loaded
CODE = (
    "import sys\n"
    "from vft.cli import main\n"
    "code = 0\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit as exc:\n    code = exc.code\n"
    "print('LOADED=' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
    "('pydantic', 'pydantic_core', 'annotated_types'))), file=sys.stderr)\n"
    "sys.exit(code)\n"
)

COMMANDS = [
    ["plan", RECIPE],
    ["plan", RECIPE, "--json"],
    ["plan", RECIPE, "-b", "modal", "--json"],
    ["backends"],
    ["backends", "--json"],
]


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CODE, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "80", **env},
        timeout=120,
    )


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_plan_and_backends_import_no_pydantic(argv: list[str]) -> None:
    out = run(argv, VFT_DISABLE_PLUGIN_AUTOLOAD="1")
    assert out.returncode == 0, out.stderr
    assert out.stderr.rstrip().endswith("LOADED="), out.stderr[-2000:]
    if argv[-1] == "--json":
        data = json.loads(out.stdout)
        if argv[0] == "backends":
            modal = next(b for b in data["backends"] if b["name"] == "modal")
            assert "volume" in modal["options"]  # the options model was built, without pydantic
        else:
            assert data["name"] == "gsm8k-qwen3-0.6b"


def test_the_slurm_plugin_options_import_no_pydantic() -> None:
    try:
        metadata.distribution("vft-slurm")
    except metadata.PackageNotFoundError:
        pytest.skip("vft-slurm is not installed")
    source = str(ROOT / "plugins" / "vft-slurm")
    env = {"VFT_PLUGINS": "vft-slurm", "PYTHONPATH": os.pathsep.join([source, str(ROOT)])}
    out = run(["backends", "--json"], **env)
    assert out.returncode == 0, out.stderr
    assert out.stderr.rstrip().endswith("LOADED="), out.stderr[-2000:]
    slurm = next(b for b in json.loads(out.stdout)["backends"] if b["name"] == "slurm")
    assert "partition" in slurm["options"]


def test_a_bad_recipe_is_refused_without_pydantic(tmp_path: Path) -> None:
    """The one-line errors come from vft's own validator, not from translated pydantic ones."""
    recipe = tmp_path / "r.toml"
    recipe.write_text((ROOT / RECIPE).read_text() + "\n[run]\nstop_grace_s = inf\n")
    out = run(["plan", str(recipe)], VFT_DISABLE_PLUGIN_AUTOLOAD="1")
    assert out.returncode == 2
    assert out.stderr.startswith(
        "vft: error: run.stop_grace_s: inf is not allowed: use a finite number, not inf or nan "
        "(allowed: 0 to 3600)\n"
    ), out.stderr
    assert out.stderr.rstrip().endswith("LOADED="), out.stderr
