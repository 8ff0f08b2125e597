"""The Slurm backend before anything is submitted: the batch script and `[backend.slurm]`.

These need the vft-slurm package (installed here if missing) but no cluster: rendering is
pure, and `vft plan --backend slurm` never calls Slurm.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vft.testing import run_vft

REPO = Path(__file__).resolve().parents[3]
PLUGINS = {"vft_slurm": REPO / "plugins" / "vft-slurm"}


def ensure_installed(modules: dict[str, Path]) -> None:
    """pip-install (editable, no deps) each plugin package that is not importable yet."""
    from vft.core import plugins

    missing = [path for mod, path in modules.items() if importlib.util.find_spec(mod) is None]
    for path in missing:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(path)],
            check=True,
            capture_output=True,
        )
    if missing:
        importlib.invalidate_caches()
        plugins.reset()


@pytest.fixture(scope="session", autouse=True)
def slurm_plugin() -> None:
    ensure_installed(PLUGINS)


def vft(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_vft(*args, cwd=cwd, timeout=60)


def write_recipe(folder: Path, slurm: str = "", **resources: object) -> Path:
    res = {"gpus": "T4:2", "nodes": 2, "inference_gpus": 2, **resources}
    lines = "\n".join(f"{k} = {v!r}" for k, v in res.items())
    (folder / "train.py").write_text("")
    path = folder / "r.toml"
    path.write_text(
        textwrap.dedent(
            """
            name = "two-node"
            [model]
            name = "vft-tiny"
            params_b = 0.0001
            [environment]
            id = "vft_smoke"
            [trainer]
            script = "train.py"
            per_device_train_batch_size = 2
            num_generations = 2
            gradient_accumulation_steps = 1
            """
        )
        + f"[resources]\n{lines}\n[backend.slurm]\n{textwrap.dedent(slurm)}"
    )
    return path


def batch_script(plan_stdout: str) -> str:
    return plan_stdout[plan_stdout.index("#!/bin/bash") :]


def test_plan_shows_the_batch_script(tmp_path):
    write_recipe(
        tmp_path,
        """
        partition = "gpu"
        account = "proj-7"
        time_limit = "1-12:00:00"
        gres_type = "t4"
        cpus_per_node = 16
        mem_per_node = "200G"
        sbatch = ["--qos=high", "#SBATCH --exclusive"]
        venv = "/shared/envs/vft"
        setup = ["module load cuda/12.4"]
        """,
    )
    out = vft("plan", "r.toml", "--backend", "slurm", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    script = batch_script(out.stdout)
    run_dir = f"{tmp_path}/outputs/two-node/attempt-N"
    for line in (
        "#SBATCH --job-name=vft-two-node",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gres=gpu:t4:2",
        "#SBATCH --cpus-per-task=16",
        "#SBATCH --mem=200G",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=proj-7",
        "#SBATCH --time=1-12:00:00",
        f"#SBATCH --output={run_dir}/slurm-%j.out",
        f"#SBATCH --chdir={tmp_path}",
        "#SBATCH --qos=high",
        "#SBATCH --exclusive",
        "source /shared/envs/vft/bin/activate",
        "module load cuda/12.4",
        f"export VFT_RUN_DIR={run_dir}",
    ):
        assert line in script.splitlines(), line
    # vft's one node entry per node, and a failure on any node ends every node's part
    srun = script[script.index("srun ") :]
    assert "--ntasks-per-node=1" in srun and "--kill-on-bad-exit=1" in srun
    assert "--cpus-per-task=16" in srun
    assert (
        'bash -c \'exec /shared/envs/vft/bin/python -m vft.core.node "$VFT_RUN_DIR" '
        '--node-rank "$SLURM_NODEID" --addresses "$VFT_NODE_ADDRESSES"\'' in srun
    )


def test_cpu_plan_asks_for_no_gpus_and_defaults_to_this_python(tmp_path):
    write_recipe(tmp_path, gpus="cpu", nodes=1)
    (tmp_path / "r.toml").write_text(
        (tmp_path / "r.toml").read_text().replace("inference_gpus = 2\n", "")
    )
    out = vft("plan", "r.toml", "--backend", "slurm", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    script = batch_script(out.stdout)
    assert "--gres" not in script
    assert "#SBATCH --nodes=1" in script
    assert f"export PATH={Path(sys.executable).parent}:" in script


@pytest.mark.parametrize(
    ("option", "key", "words"),
    [
        ('time_limit = "soon"', "backend.slurm.time_limit", "D-HH:MM:SS"),
        ('partition = "gpu; rm -rf x"', "backend.slurm.partition", "letters, digits"),
        ('sbatch = ["qos=high"]', "backend.slurm.sbatch", "one sbatch option"),
        ('mem_per_node = "lots"', "backend.slurm.mem_per_node", "200G"),
        ('queue = "gpu"', "backend.slurm.queue", "unknown key"),
    ],
)
def test_bad_options_are_one_line(tmp_path, option, key, words):
    write_recipe(tmp_path, option)
    out = vft("plan", "r.toml", "--backend", "slurm", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert key in lines[0] and words in lines[0], lines[0]


def test_device_ids_map_onto_what_slurm_gave_the_node():
    """A plan numbers a node's GPUs 0..n-1; Slurm names the ones the job got (here 4,5)."""
    from vft.core.plan import NodeContext, Process

    procs = (
        Process("inference", "inference-0", 0, (0,), ("serve",), {"CUDA_VISIBLE_DEVICES": "0"}),
        Process("trainer", "trainer-0", 0, (1,), ("train",), {"CUDA_VISIBLE_DEVICES": "1"}),
    )
    ctx = NodeContext.here(0, ("a",), "/r", {"CUDA_VISIBLE_DEVICES": "4,5"})
    envs = {p.name: p.resolved(ctx).env["CUDA_VISIBLE_DEVICES"] for p in procs}
    assert envs == {"inference-0": "4", "trainer-0": "5"}
    with pytest.raises(ValueError, match="GPU index 1 but this node was given only 1"):
        procs[1].resolved(NodeContext.here(1, ("a", "b"), "/r", {"CUDA_VISIBLE_DEVICES": "7"}))


def test_without_slurm_commands_run_is_refused_in_one_line(tmp_path):
    """On a machine without sbatch (not a login node), before anything is written."""
    write_recipe(tmp_path)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    out = subprocess.run(
        [sys.executable, "-m", "vft", "run", "r.toml", "--backend", "slurm"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "vft: error: slurm: 'sbatch' not found; run vft where Slurm's commands are (a login node)"
    )
    assert not (tmp_path / "outputs").exists()
