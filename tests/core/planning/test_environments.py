"""The five shipped environments and the built-in smoke one, scored on offline fixtures.

Single-turn rewards are scored on known-good and known-bad replies; multi-turn ones play
a whole episode through the environment's own `run()` loop with scripted replies.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from vft.core.errors import PlanError
from vft.core.planning.environments import (
    PROJECT_ENVIRONMENTS,
    check_environment,
    installed_environments,
    is_installed,
    project_environments,
)
from vft.core.recipe.schema import recipe_from_dict

pytest.importorskip("verifiers")
ENV_IDS = ["gsm8k", "reverse_text", "continuation_quality", "wordle", "math_python"]


@pytest.fixture(autouse=True)
def _environments_importable(monkeypatch):
    """The project's environment packages import from their folders, installed or not."""
    for env_id in ENV_IDS:
        monkeypatch.syspath_prepend(str(PROJECT_ENVIRONMENTS / env_id))


def score(env_id: str, reply: str, args: dict | None = None, index: int = 0) -> float:
    from vft.train import environment as E

    loaded = E.load(env_id, args or {})
    task = loaded.tasks[index]
    return E.score(task, [*E.prompt_messages(task), {"role": "assistant", "content": reply}])


def play(env_id: str, replies: list[str], args: dict | None = None, index: int = 0):
    from vft.train import environment as E
    from vft.train.rollout import ScriptedPolicy, make_env, run_episode

    loaded = E.load(env_id, args or {})
    env = make_env(loaded, args or {})
    conv = asyncio.run(run_episode(env, loaded.tasks[index], ScriptedPolicy(replies)))
    return loaded.tasks[index], conv


def test_every_environment_is_a_package_with_a_fixture():
    for env_id in ENV_IDS:
        folder = PROJECT_ENVIRONMENTS / env_id
        assert (folder / "pyproject.toml").is_file()
        assert (folder / env_id / "__init__.py").is_file()
    assert {e.id for e in project_environments()} >= set(ENV_IDS)


def test_gsm8k_rewards_a_correct_boxed_answer():
    args = {"dataset": "fixture"}
    assert score("gsm8k", "48 / 2 = 24, 48 + 24 = 72. \\boxed{72}", args) == pytest.approx(1.2)
    assert score("gsm8k", "The answer is \\boxed{71}", args) == pytest.approx(0.2)
    assert score("gsm8k", "72", args) == 0.0  # right number, no box: no credit
    assert score("gsm8k", "so \\boxed{$10}", args, index=1) == pytest.approx(1.2)


def test_reverse_text_gives_partial_credit():
    from vft.train import environment as E

    text = E.load("reverse_text", {"num_examples": 3}).tasks[0].data.text
    assert score("reverse_text", f"<reversed>{text[::-1]}</reversed>", {"num_examples": 3}) == 1.0
    half = score("reverse_text", f"<reversed>{text[::-1][: len(text) // 2]}</reversed>")
    assert 0.3 < half < 1.0
    assert score("reverse_text", "<reversed></reversed>") == 0.0
    assert score("reverse_text", text) < 0.6  # not reversed


def test_continuation_quality_prefers_a_fresh_continuation():
    good = (
        "He paused at the window near the top and watched the fishing boats return, their "
        "lanterns swaying over dark water. Tonight the wind carried a smell of rain, and he "
        "knew the storm his father had warned about was finally coming."
    )
    assert score("continuation_quality", good) > 0.8
    assert score("continuation_quality", "the the the the the the the the") < 0.1
    assert score("continuation_quality", "") == 0.0
    from vft.train import environment as E

    passage = E.load("continuation_quality").tasks[0].data.passage
    assert score("continuation_quality", passage + " " + passage) < 0.3  # copied back


def test_wordle_episode_solved_on_third_guess():
    from wordle.game import feedback

    assert feedback("crane", "react") == "YYGXY"
    assert feedback("speed", "abide") == "XXYXY"  # a repeated e is marked once
    task, _ = play("wordle", [])  # learn the secret of task 0
    secret = task.data.secret
    task, conv = play("wordle", ["[crane]", "[zzzzz]", f"I think it is [{secret}]", "[never]"])
    assert conv.turns == 3  # the environment ended the game at the right guess
    assert "guesses left" in conv.messages[-2]["content"]
    r = conv.trace.rewards
    assert r["solved"].score == 1.0
    assert r["few_guesses"].score == pytest.approx(4 / 6)
    assert conv.trace.reward == pytest.approx(1 + 0.5 * 4 / 6 + 0.2)


def test_wordle_episode_lost_after_six_bad_guesses():
    _, conv = play("wordle", ["no brackets here"] + ["[zzzzz]"] * 10)
    assert conv.turns == 6
    assert "No valid guess" in conv.messages[2]["content"]  # rules, reply, feedback
    assert conv.trace.rewards["solved"].score == 0.0
    assert conv.trace.rewards["valid_format"].score == pytest.approx(5 / 6)


def test_math_python_runs_the_tool_and_checks_the_answer():
    _, conv = play(
        "math_python",
        ["```python\nprint(sum(range(1, 101)))\n```", "So the sum is \\boxed{5050}."],
    )
    assert conv.messages[-2]["content"] == "Output:\n5050"  # the code really ran
    assert conv.trace.reward == 1.0
    assert conv.trace.metrics["tool_calls"] == 1.0
    _, wrong = play("math_python", ["\\boxed{5000}"])
    assert wrong.turns == 1 and wrong.trace.reward == 0.0


def test_math_python_tool_reports_errors_and_timeouts():
    from math_python.tool import run_python

    assert "ZeroDivisionError" in run_python("1/0")
    assert "stopped" in run_python("while True: pass", timeout_s=1)


def test_smoke_environment_has_reward_variance():
    from vft.train.smoke_env import letter_score

    letters = "abcdef"
    assert letter_score("abc", letters) == 1.0
    assert letter_score("xyz", letters) == 0.0
    assert letter_score("ab yz", letters) == 0.5
    assert letter_score("", letters) == 0.0


def test_smoke_environment_counts_as_installed():
    assert is_installed("vft_smoke")
    assert "vft_smoke" in {e.id for e in installed_environments()}
    recipe = recipe_from_dict(
        {
            "name": "s",
            "model": {"name": "vft-tiny"},
            "environment": {"id": "vft_smoke"},
            "resources": {"gpus": "cpu"},
        }
    )
    check_environment(recipe)


def test_plan_refuses_an_environment_not_installed_naming_the_install_line():
    recipe = recipe_from_dict(
        {
            "name": "w",
            "model": {"name": "m"},
            "environment": {"id": "no_such_env_xyz"},
            "resources": {"gpus": "cpu"},
        }
    )
    with pytest.raises(PlanError, match=r'install = \["path/to/no_such_env_xyz"\]'):
        check_environment(recipe)


def test_vft_envs_lists_environments_as_json():
    out = subprocess.run(
        [sys.executable, "-m", "vft", "envs", "--all", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    envs = {e["id"]: e for e in json.loads(out.stdout)}
    assert envs["vft_smoke"]["source"] == "builtin"
    for env_id in ENV_IDS:  # installed (e.g. by an earlier `vft run`) or not yet
        assert envs[env_id]["path"].endswith(str(Path("environments") / env_id))
        assert envs[env_id]["source"] in ("installed", "project (not installed)")
    table = subprocess.run(
        [sys.executable, "-m", "vft", "envs"], capture_output=True, text=True, check=True
    )
    assert "vft_smoke" in table.stdout
