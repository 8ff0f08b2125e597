"""`vft sweep` and `vft runs --sweep`: the plan table, refusals before any launch, and real
sweeps of the CPU smoke recipe (four runs to their end; Ctrl-C stopping every point)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from vft.cli import cli
from vft.cli.sweep_cmd import plan_point
from vft.testing import TOKEN_VAR, processes_with, run_vft

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / "examples" / "recipes" / "smoke.toml")
GRID = ("--grid", "trainer.learning_rate=1e-3,2e-3", "--grid", "trainer.beta=0,0.04")
POINTS = [
    "smoke-lr0.001-beta0",
    "smoke-lr0.001-beta0.04",
    "smoke-lr0.002-beta0",
    "smoke-lr0.002-beta0.04",
]
#: the smoke recipe cut to one small step: a point costs its start-up, not its training
SMALL = (
    "trainer.max_steps=1",
    "environment.args.num_examples=8",
    "trainer.per_device_train_batch_size=2",
    "trainer.num_generations=2",
)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("vft: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def test_dry_run_plans_every_point_in_one_table_and_starts_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    shown = invoke("sweep", SMOKE, *GRID, "--dry-run")
    assert shown.exit_code == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if line.startswith("│")]
    cells = [[c.strip() for c in row.strip("│").split("│")] for row in rows]
    assert cells == [
        [POINTS[0], "0.001", "0", "cpu", "-", "-"],
        [POINTS[1], "0.001", "0.04", "cpu", "-", "-"],
        [POINTS[2], "0.002", "0", "cpu", "-", "-"],
        [POINTS[3], "0.002", "0.04", "cpu", "-", "-"],
        ["total", "", "", "", "-", "-"],
    ]
    assert "4 points, at most 1 at once" in shown.stdout
    assert "dry run: nothing started" in shown.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU driver")
def test_a_dry_run_that_a_real_sweep_would_refuse_here_exits_2(tmp_path, monkeypatch):
    """As `vft run --dry-run`: the table and the refusal are shown, nothing starts, and the
    exit code says that the sweep would not start on this machine (no GPU here)."""
    monkeypatch.chdir(tmp_path)
    shown = invoke("sweep", SMOKE, *GRID, "--set", "resources.gpus=A100-80GB:2", "--dry-run")
    assert shown.exit_code == 2, shown.stderr
    assert (
        "vft: a real sweep would stop here: sweep point smoke-lr0.001-beta0: resources.gpus: it"
        in shown.stderr
    )
    assert shown.stderr.splitlines()[-1] == "vft: dry run: nothing started"
    assert not (tmp_path / "outputs").exists()


def test_cloud_points_show_their_cost_and_the_total_at_max_parallel(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    grid = ("--grid", "resources.gpus=H100:1,H100:2", "--grid", "trainer.seed=1,2")
    cost = "resources.step_seconds=36"  # the recipe's 150 steps: 1.5 h a point
    shown = invoke(
        "sweep", SMOKE, *grid, "--set", cost, "-b", "modal", "--max-parallel", "3", "--dry-run"
    )
    assert shown.exit_code == 0, shown.stderr
    rows = {
        cells[0]: cells[1:]
        for row in shown.stdout.splitlines()
        if row.startswith("│") and (cells := [c.strip() for c in row.strip("│").split("│")])
    }
    one, two = (float(rows[f"smoke-gpusH100-{n}-seed1"][-2]) for n in (1, 2))
    assert two == pytest.approx(2 * one, rel=0.01) and one > 0
    assert rows["smoke-gpusH100-2-seed2"][2] == "H100:2"
    total_rate, total_usd = (float(x) for x in rows["total"][-2:])
    assert total_rate == pytest.approx(one + 2 * two, abs=0.011)  # the 3 dearest at once
    assert total_usd == pytest.approx(1.5 * (2 * one + 2 * two), abs=0.05)


def test_an_invalid_point_refuses_the_sweep_before_anything_launches(tmp_path):
    out = tmp_path / "outputs"
    refused = run_vft(
        "sweep",
        SMOKE,
        "--grid",
        "trainer.learning_rate=1e-3,20",
        *sets(f"run.output_dir={json.dumps(str(out))}"),
        cwd=tmp_path,
    )
    assert refused.returncode == 2
    assert error_line(refused.stderr) == (
        "vft: error: sweep point smoke-lr20 (trainer.learning_rate=20): trainer.learning_rate: "
        "20 is not allowed: it must be greater than 0, at most 10"
    )
    assert not out.exists() and refused.stdout == ""  # no table, no record, no run folder


def test_grid_keys_and_values_are_checked_first(tmp_path):
    typo = run_vft("sweep", SMOKE, "--grid", "trainer.learnig_rate=1e-6", cwd=tmp_path)
    assert typo.returncode == 2
    assert error_line(typo.stderr) == (
        "vft: error: --grid: 'trainer.learnig_rate' is not a recipe key "
        "(did you mean 'trainer.learning_rate'?)"
    )
    nothing = run_vft("sweep", SMOKE, cwd=tmp_path)
    assert nothing.returncode == 2 and "nothing to sweep" in error_line(nothing.stderr)
    assert not (tmp_path / "outputs").exists()


def test_the_recipes_sweep_table_is_the_grid(tmp_path, monkeypatch):
    recipe = tmp_path / "r.toml"
    text = Path(SMOKE).read_text()
    recipe.write_text(
        text + '\n[sweep]\n"trainer.seed" = [1, 2]\n"trainer.lr_scheduler" = ["constant"]\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    shown = invoke("sweep", str(recipe), "--grid", "trainer.seed=3", "--name", "again", "--dry-run")
    assert shown.exit_code == 0, shown.stderr
    assert "again-seed3-schedconstant" in shown.stdout and "seed1" not in shown.stdout
    # each point is one run: its recipe has no grid left (`vft run` of a grid is refused)
    point = plan_point(str(recipe), "local", "again-seed3", (), ("trainer.seed=3",))
    assert point.plan.recipe["sweep"] == {} and point.plan.name == "again-seed3"
    assert point.plan.trainer.training.seed == 3


def test_the_example_sweep_recipe_plans(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shown = invoke("sweep", str(REPO / "examples" / "recipes" / "sweep.toml"), "--dry-run")
    assert shown.exit_code == 0, shown.stderr
    assert "4 points" in shown.stdout


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU driver")
def test_gpu_points_on_a_machine_without_gpus_are_refused_up_front(tmp_path):
    refused = run_vft(
        "sweep",
        SMOKE,
        "--grid",
        "trainer.seed=1,2",
        *sets("resources.gpus=A100-80GB:2"),
        cwd=tmp_path,
    )
    assert refused.returncode == 2
    line = error_line(refused.stderr)
    assert line.startswith(
        "vft: error: sweep point smoke-seed1: resources.gpus: it needs 2 GPU(s), this machine has 0"
    )
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow  # ~80 s: four runs at once (a point mostly waits, on 2 cores too)
def test_a_2x2_sweep_of_the_smoke_recipe_runs_four_runs_and_sums_them_up(tmp_path):
    pytest.importorskip("trl")
    out = tmp_path / "outputs"
    done = run_vft(
        "sweep",
        SMOKE,
        *GRID,
        *sets(*SMALL, f"run.output_dir={json.dumps(str(out))}"),
        "--max-parallel",
        "4",
        cwd=tmp_path,
        timeout=600,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    record = json.loads((out / "smoke.sweep.json").read_text())
    assert record["status"] == "succeeded" and record["max_parallel"] == 4
    assert [p["name"] for p in record["points"]] == POINTS
    assert [p["values"] for p in record["points"]][1] == {
        "trainer.learning_rate": 0.001,
        "trainer.beta": 0.04,
    }
    runs = []
    for name in POINTS:  # each point an ordinary run: its folder, plan, metrics
        attempt = out / name / "attempt-1"
        plan = json.loads((attempt / "plan.json").read_text())
        assert plan["name"] == name
        runs.append(json.loads((attempt / "run.json").read_text()))
        assert runs[-1]["status"] == "succeeded" and runs[-1]["detached"] is True
        rows = [json.loads(line) for line in (attempt / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [1]
    lr, beta = (
        json.loads((out / POINTS[3] / "attempt-1" / "plan.json").read_text())["trainer"][
            "training"
        ][k]
        for k in ("learning_rate", "beta")
    )
    assert (lr, beta) == (0.002, 0.04)
    assert max(r["started_at"] for r in runs) < min(r["ended_at"] for r in runs)  # side by side
    summary = [line for line in done.stdout.splitlines() if line.startswith("│")][-4:]
    for name, line in zip(POINTS, summary, strict=True):
        cells = [c.strip() for c in line.strip("│").split("│")]
        assert cells[0] == name and cells[3] == "succeeded" and cells[4] == "1"
        assert 0.0 <= float(cells[5]) <= 1.0 and cells[5] == cells[6]
    assert "sweep smoke succeeded" in done.stderr
    listed = run_vft("runs", "--sweep", "smoke", "--output-dir", out, cwd=tmp_path)
    assert listed.returncode == 0 and listed.stdout.count("succeeded") == 5  # title and 4 rows
    status = run_vft("status", POINTS[0], "--output-dir", out, cwd=tmp_path)
    assert status.returncode == 0 and "succeeded, exit code 0" in status.stdout


def _trainer_started(node_record: Path) -> bool:
    try:
        return bool(json.loads(node_record.read_text())["processes"]["trainer"]["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


@pytest.mark.slow
def test_ctrl_c_stops_every_running_point_and_leaves_nothing(tmp_path, no_leftovers):
    pytest.importorskip("trl")
    out = tmp_path / "outputs"
    argv = [sys.executable, "-m", "vft", "sweep", SMOKE, "--grid", "trainer.seed=1,2,3"]
    argv += [*sets(f"run.output_dir={json.dumps(str(out))}"), "--max-parallel", "2"]
    env = {**os.environ, TOKEN_VAR: no_leftovers, "COLUMNS": "200"}
    sweep = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert sweep.stderr is not None
        seen = []
        for line in sweep.stderr:
            seen.append(line)
            if "[2/3] smoke-seed2 started" in line:
                break
        else:
            pytest.fail("".join(seen))
        nodes = [out / f"smoke-seed{n}" / "attempt-1" / "nodes" / "node-0.json" for n in (1, 2)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(map(_trainer_started, nodes)):
            time.sleep(0.2)  # both points' trainers started, so there is a tree to stop
        assert all(map(_trainer_started, nodes))
        sweep.send_signal(signal.SIGINT)
        _, rest = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 130, "".join(seen) + rest
    assert "SIGINT: stopping the sweep" in rest
    record = json.loads((out / "smoke.sweep.json").read_text())
    assert record["status"] == "interrupted"
    assert [p["status"] for p in record["points"]] == ["stopped", "stopped", "not started"]
    for name in ("smoke-seed1", "smoke-seed2"):
        assert (
            json.loads((out / name / "attempt-1" / "run.json").read_text())["status"] == "stopped"
        )
    assert not (out / "smoke-seed3").exists()
    assert not processes_with(no_leftovers)
