"""Environments: the built-in ones scored on offline fixtures, discovery, plan-time facts.

The tutorial's five ship inside vft (`vft.environments.*`). Single-turn rewards are
scored on known-good and known-bad replies; multi-turn ones play whole episodes through
the environment's own loop against a scripted chat server (real HTTP on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from vft.core.errors import PlanError
from vft.core.planning.environment_facts import EnvironmentFacts, environment_problems
from vft.core.planning.environments import (
    BUILTIN_ENVIRONMENTS,
    PROJECT_ENVIRONMENTS,
    check_environment,
    environment_source,
    installed_environments,
    is_installed,
    project_environments,
    suggest,
)
from vft.core.recipe.schema import recipe_from_dict

ENV_IDS = ["gsm8k", "reverse_text", "continuation_quality", "wordle", "math_python"]
ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ROOT / "tests" / "train" / "envs" / "packages"


def recipe(env: dict, gpus: str = "cpu"):
    return recipe_from_dict(
        {"name": "r", "model": {"name": "m"}, "environment": env, "resources": {"gpus": gpus}}
    )


# -- the built-in environments ---------------------------------------------------------


def test_every_builtin_is_a_package_folder_and_needs_no_install():
    for env_id in ENV_IDS:
        folder = PROJECT_ENVIRONMENTS / env_id
        assert (folder / "pyproject.toml").is_file()
        assert (folder / env_id / "__init__.py").is_file()
        assert BUILTIN_ENVIRONMENTS[env_id] == f"vft.environments.{env_id}"
        assert is_installed(env_id)
        check_environment(recipe({"id": env_id}))  # no install line needed
        assert environment_source(recipe({"id": env_id})) == "builtin"
    assert {e.id: e.source for e in project_environments()}["wordle"] == "builtin"


def builtin_submodule(env_id: str, name: str):
    """`vft.environments.<env_id>.<name>` (through vft's loader: an editable install made
    before the environments were built in cannot import them directly)."""
    import importlib

    from vft.train import envs

    envs.find_module(env_id)
    return importlib.import_module(f"vft.environments.{env_id}.{name}")


def _score(env_id: str, replies: list[str], args: dict | None = None, index: int = 0):
    pytest.importorskip("verifiers")
    from vft.train import envs

    a = envs.load(env_id, args or {})
    return asyncio.run(a.score_group(a.rows()[index], replies)), a


def test_gsm8k_rewards_a_correct_boxed_answer():
    (right, wrong, bare), a = _score(
        "gsm8k",
        ["48 / 2 = 24, 48 + 24 = 72. \\boxed{72}", "The answer is \\boxed{71}", "72"],
        {"dataset": "fixture"},
    )
    assert a.api == "legacy" and a.reward_weights == {"correct_answer": 1.0, "boxed_format": 0.2}
    assert right.reward == pytest.approx(1.2) and wrong.reward == pytest.approx(0.2)
    assert bare.reward == 0.0  # right number, no box: no credit
    (dollars,), _ = _score("gsm8k", ["so \\boxed{$10}"], {"dataset": "fixture"}, index=1)
    assert dollars.reward == pytest.approx(1.2)
    assert len(a.eval_rows() or []) == 6


def test_reverse_text_gives_partial_credit():
    pytest.importorskip("verifiers")
    from vft.train import envs

    a = envs.load("reverse_text", {"num_examples": 3})
    row = a.rows()[0]
    text = row.data.data.text
    full, half, empty, plain = asyncio.run(
        a.score_group(
            row,
            [
                f"<reversed>{text[::-1]}</reversed>",
                f"<reversed>{text[::-1][: len(text) // 2]}</reversed>",
                "<reversed></reversed>",
                text,
            ],
        )
    )
    assert a.api == "v1" and full.reward == 1.0 and 0.3 < half.reward < 1.0
    assert empty.reward == 0.0 and plain.reward < 0.6  # not reversed
    assert full.metrics == {"uses_tags": 1.0}


def test_continuation_quality_prefers_a_fresh_continuation():
    good = (
        "He paused at the window near the top and watched the fishing boats return, their "
        "lanterns swaying over dark water. Tonight the wind carried a smell of rain, and he "
        "knew the storm his father had warned about was finally coming."
    )
    (g, rep, empty), a = _score("continuation_quality", [good, "the the the the the the", ""])
    assert g.reward > 0.8 and rep.reward < 0.1 and empty.reward == 0.0
    passage = a.rows()[0].data.data.passage
    (copied,), _ = _score("continuation_quality", [passage + " " + passage])
    assert copied.reward < 0.3


def _play(env_id: str, policy, args: dict | None = None, index: int = 0, max_tokens: int = 512):
    pytest.importorskip("verifiers")
    from tests.train.envs.fake_openai import FakeServer
    from vft.train import envs

    a = envs.load(env_id, args or {})
    row = a.rows()[index]
    with FakeServer(policy) as srv:
        (r,) = asyncio.run(
            a.rollout_group(row, 1, envs.Server(srv.base_url, "fake"), {"max_tokens": max_tokens})
        )
    return a, row, r


def scripted(replies: list[str]):
    def policy(messages, tools):
        n = sum(m["role"] == "assistant" for m in messages)
        return (replies[n] if n < len(replies) else "[never]"), None

    return policy


def test_wordle_episode_solved_on_third_guess():
    pytest.importorskip("verifiers")
    feedback = builtin_submodule("wordle", "game").feedback

    assert feedback("crane", "react") == "YYGXY"
    assert feedback("speed", "abide") == "XXYXY"  # a repeated e is marked once
    from vft.train import envs

    secret = envs.load("wordle").rows()[0].data["answer"]
    a, _, r = _play("wordle", scripted(["[crane]", "[zzzzz]", f"I think it is [{secret}]", "[x]"]))
    assert a.multi_turn and r.turns == 3  # the environment ended the game at the right guess
    assert "guesses left" in r.completion[1]["content"]
    assert r.rewards["solved"] == 1.0 and r.rewards["few_guesses"] == pytest.approx(4 / 6)
    assert r.reward == pytest.approx(1 + 0.5 * 4 / 6 + 0.2)


def test_wordle_episode_lost_after_six_bad_guesses():
    _, _, r = _play("wordle", scripted(["no brackets here"] + ["[zzzzz]"] * 10))
    assert r.turns == 6
    assert "No valid guess" in r.completion[1]["content"]
    assert r.rewards["solved"] == 0.0 and r.rewards["valid_format"] == pytest.approx(5 / 6)


def test_math_python_runs_the_code_and_checks_the_answer():
    _, _, r = _play(
        "math_python",
        scripted(["```python\nprint(sum(range(1, 101)))\n```", "So the sum is \\boxed{5050}."]),
    )
    assert r.completion[1]["content"] == "Output:\n5050"  # the code really ran
    assert r.reward == 1.0 and r.metrics["tool_calls"] == 1.0 and r.turns == 2
    _, _, wrong = _play("math_python", scripted(["\\boxed{5000}"]))
    assert wrong.turns == 1 and wrong.reward == 0.0


def test_math_python_tool_reports_errors_and_timeouts():
    pytest.importorskip("verifiers")
    run_python = builtin_submodule("math_python", "tool").run_python

    assert "ZeroDivisionError" in run_python("1/0")
    assert "stopped" in run_python("while True: pass", timeout_s=1)


# -- discovery -----------------------------------------------------------------------------


def test_smoke_environment_counts_as_installed():
    assert is_installed("vft_smoke")
    assert "vft_smoke" in {e.id for e in installed_environments()}
    check_environment(recipe({"id": "vft_smoke"}))


def test_plan_refuses_an_unknown_environment_with_a_suggestion():
    with pytest.raises(PlanError, match=r'install = \["path/to/no_such_env_xyz"\]'):
        check_environment(recipe({"id": "no_such_env_xyz"}))
    with pytest.raises(PlanError, match=r"did you mean 'wordle'\?"):
        check_environment(recipe({"id": "wordel"}))
    assert suggest("gsm8", ["gsm8k", "wordle"]) == " (did you mean 'gsm8k'?)"
    assert suggest("zzzz", ["gsm8k"]) == ""


def test_an_environment_installed_at_launch_need_not_be_here():
    r = recipe({"id": "remote_only_env", "install": ["envs/remote_only_env"]})
    check_environment(r)
    check_environment(r, remote=True)
    assert environment_source(r, remote=True) == "installed in the image (envs/remote_only_env)"
    assert environment_source(r) == "environment.install (envs/remote_only_env)"


def _venv_with_vft(tmp_path: Path) -> Path:
    """A throwaway venv that sees this one's packages (and vft), for installing into."""
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    site = next(target.glob("lib/python*/site-packages"))
    parent = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (site / "_parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return target / "bin" / "python"


@pytest.mark.slow
def test_an_editable_hatchling_install_is_discovered(tmp_path):
    """Hatchling's editable install is a `_<name>.pth` path line, no top_level.txt, no
    finder; the package declares no dependency on verifiers either."""
    python = _venv_with_vft(tmp_path)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", str(PACKAGES / "vfx_hatch")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode:
        pytest.skip(f"cannot build with hatchling here: {done.stderr.strip().splitlines()[-1:]}")
    script = (
        "import json; from vft.core.planning.environments import installed_environments, "
        "is_installed; print(json.dumps([[e.id, e.source, e.version] for e in "
        "installed_environments()] + [is_installed('vfx_hatch')]))"
    )
    out = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert ["vfx_hatch", "installed", "0.2.0"] in listed[:-1]
    assert listed[-1] is True


def test_vft_envs_lists_environments_as_json():
    out = subprocess.run(
        [sys.executable, "-m", "vft", "envs", "--all", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    envs = {e["id"]: e for e in json.loads(out.stdout)}
    assert envs["vft_smoke"]["source"] == "builtin"
    for env_id in ENV_IDS:
        assert envs[env_id]["source"] == "builtin"
        assert envs[env_id]["path"].endswith(str(Path("environments") / env_id))
    if "facts" in envs["wordle"]:  # the trainer's stack is installed here
        assert envs["wordle"]["facts"]["multi_turn"] is True
        assert envs["gsm8k"]["facts"]["eval_split"] == {"present": True, "size": 6}
    table = subprocess.run(
        [sys.executable, "-m", "vft", "envs", "--no-describe"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "vft_smoke" in table.stdout


# -- plan-time facts and refusals --------------------------------------------------------


def facts(**kw) -> EnvironmentFacts:
    base = {
        "id": "e",
        "api": "legacy",
        "multi_turn": False,
        "uses_tools": False,
        "agents": ["agent"],
        "eval_split": {"present": True, "size": 3},
        "train_size": 10,
        "rewards": [{"name": "r", "weight": 1.0}],
        "metrics": ["m"],
        "accepted_args": ["n"],
        "source": "/x/e/__init__.py",
    }
    return EnvironmentFacts.from_dict({**base, **kw})


def test_facts_round_trip_through_json():
    f = facts(harness="null", sampling_args={"max_tokens": 4})
    again = EnvironmentFacts.from_dict(json.loads(json.dumps(f.to_dict())))
    assert again == f and again.extra == {"sampling_args": {"max_tokens": 4}}
    assert f.eval_size == 3 and f.rewards[0].weight == 1.0


def test_summary_line_for_vft_plan():
    from vft.core.planning.environment_facts import summary_line

    f = facts(id="g", rewards=[{"name": "a", "weight": 1.0}, {"name": "b", "weight": 0.2}])
    assert summary_line("g", "builtin", f) == (
        "g: builtin; classic API, single-turn; rewards a x1 + b x0.2; metrics m; eval split 3"
    )
    assert summary_line("g", "installed in the image (envs/g)", None) == (
        "g: installed in the image (envs/g) (not loaded here)"
    )


def test_single_turn_trains_anywhere():
    assert environment_problems(facts(), served=False, cpu=True) == []
    assert environment_problems(facts(), served=True, cpu=False) == []


def test_multi_turn_and_tools_need_a_server_in_one_line():
    mt = facts(id="wordle", multi_turn=True, needs_server=True)
    (line,) = environment_problems(mt, served=False, cpu=True)
    assert line == (
        "environment.id: 'wordle' is multi-turn: its turns run on an inference server; this "
        "plan generates inside the trainer (set inference.colocate = false on a CPU plan)"
    )
    (gpu,) = environment_problems(mt, served=False, cpu=False)
    assert "colocated" in gpu and "plan >= 2 GPUs" in gpu
    assert environment_problems(mt, served=True, cpu=True) == []
    tools = facts(uses_tools=True, multi_turn=True, needs_server=True)
    assert len(environment_problems(tools, served=False, cpu=True)) == 1
    tools_only = facts(uses_tools=True, needs_server=True)
    assert "uses tools" in environment_problems(tools_only, served=False, cpu=True)[0]
    (parser,) = environment_problems(tools_only, served=True, cpu=False, server_args=[])
    assert '"--enable-auto-tool-choice", "--tool-call-parser"' in parser
    ok = ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    assert environment_problems(tools_only, served=True, cpu=False, server_args=ok) == []


def test_what_vft_cannot_run_faithfully_is_refused():
    seats = facts(agents=["player", "judge"])
    assert environment_problems(seats, served=True, cpu=False) == [
        "environment.id: 'e' has 2 agent seats (player, judge); vft trains single-agent "
        "environments only"
    ]
    boxed = facts(api="v1", needs_server=True, harness="terminus_2", needs_container=True)
    assert "container runtime" in environment_problems(boxed, served=True, cpu=False)[0]
    shell = facts(api="v1", needs_server=True, harness="bash", harness_executes_code=True)
    assert "executes the model's code" in environment_problems(shell, served=True, cpu=False)[0]
    sandbox = facts(remote_sandbox=True)
    assert "Prime sandboxes" in environment_problems(sandbox, served=True, cpu=False)[0]
    assert "no reward function" in environment_problems(facts(rewards=[]), served=True, cpu=True)[0]


def test_eval_split_and_arguments_are_checked():
    no_eval = facts(api="v1", eval_split={"present": False, "size": 0})
    (line,) = environment_problems(no_eval, served=False, cpu=True, evaluates=True)
    assert line.startswith("trainer.eval_steps: environment 'e' has no eval split")
    assert environment_problems(facts(), served=False, cpu=True, evaluates=True) == []
    (bad,) = environment_problems(facts(), served=False, cpu=True, args={"n": 1, "nn": 2})
    assert bad == "environment.args: 'e' does not accept 'nn' (accepted: n)"
    assert (
        environment_problems(facts(accepted_args=None), served=False, cpu=True, args={"x": 1}) == []
    )


def test_describe_environment_reads_facts_from_a_subprocess(tmp_path):
    pytest.importorskip("verifiers")
    from vft.core.planning.environment_facts import describe_environment

    f = describe_environment("vfx_guess", install=[str(PACKAGES / "vfx_guess")])
    assert f is not None and f.multi_turn and f.needs_server and f.api == "legacy"
    assert [r.name for r in f.rewards] == ["solved", "efficiency"]
    assert describe_environment("no_such_env_xyz") is None
    with pytest.raises(PlanError) as bad:
        describe_environment("vfx_guess", {"nope": 1}, install=[str(PACKAGES / "vfx_guess")])
    assert bad.value.message == (
        "environment.args: 'vfx_guess' does not accept 'nope' (accepted: num_examples, max_turns)"
    )


def test_vft_plan_names_an_argument_the_environment_does_not_take(tmp_path):
    """The user's own command: one line naming environment.args, exit 2, no TypeError."""
    recipe_file = ROOT / "examples" / "recipes" / "gsm8k.toml"
    pytest.importorskip("verifiers")
    done = subprocess.run(
        [sys.executable, "-m", "vft", "plan", str(recipe_file), "--set", "environment.args.foo=1"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)},
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "vft: error: environment.args: 'gsm8k' does not accept 'foo' (accepted: dataset, "
        "split, eval_split, num_examples, num_eval_examples, system_prompt)"
    ]


@pytest.mark.parametrize("user_offline", [False, True])
def test_an_unreachable_hub_is_named_plainly_in_the_plan_note(tmp_path, monkeypatch, user_offline):
    """vft sets HF_HUB_OFFLINE itself when the Hub's host does not resolve: the note must
    say the Hub cannot be reached, not echo the Hub client's offline-mode error."""
    pytest.importorskip("verifiers")
    from vft import launch

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # nothing of gsm8k's data cached
    monkeypatch.setenv("HF_ENDPOINT", "https://no-such-host.invalid")
    if user_offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    facts, note = launch.environment_facts(recipe({"id": "gsm8k"}))
    reason = (
        "which HF_HUB_OFFLINE (set here) keeps it from reaching"
        if user_offline
        else "which this machine cannot reach"
    )
    assert facts is None
    assert note == (
        "environment 'gsm8k' could not be loaded here: its data is on the Hugging Face Hub, "
        f"{reason}; what it needs (turns, tools, rewards) is checked when the run loads it"
    )


@pytest.mark.slow
def test_an_offline_note_is_believed_for_an_hour_then_the_environment_is_tried_again(
    tmp_path, monkeypatch
):
    """`vft plan` offline caches "could not be loaded here"; once the network is back (or
    the data is cached) a later plan must describe the environment again."""
    import time

    from vft import launch
    from vft.core.planning import facts_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    r = recipe({"id": "vft_smoke", "args": {"num_examples": 8}})
    key = facts_cache.facts_key("vft_smoke", {"num_examples": 8}, ())
    cached = tmp_path / "vft" / "environments" / f"{key}.json"
    assert facts_cache.cache_file("vft_smoke", {"num_examples": 8}, ()) == cached
    cached.parent.mkdir(parents=True)
    cached.write_text(json.dumps({"note": "offline then", "at": time.time()}))
    assert launch.environment_facts(r) == (None, "offline then")
    cached.write_text(json.dumps({"note": "offline then", "at": time.time() - 2 * 3600}))
    facts, note = launch.environment_facts(r)
    assert note is None and facts is not None and facts.rewards
    assert "note" not in json.loads(cached.read_text())  # the facts replaced the note


@pytest.mark.slow
@pytest.mark.parametrize("damaged", ["null", "[1, 2]", '"text"', "{not json", "{}"])
def test_a_damaged_facts_cache_file_is_described_again(tmp_path, monkeypatch, damaged):
    """A cache file that is not a JSON object (a crash, another tool) is no traceback."""
    from vft import launch
    from vft.core.planning import facts_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cached = facts_cache.cache_file("vft_smoke", {"num_examples": 8}, ())
    assert cached is not None
    cached.parent.mkdir(parents=True)
    cached.write_text(damaged)
    facts, note = launch.environment_facts(recipe({"id": "vft_smoke", "args": {"num_examples": 8}}))
    assert note is None and facts is not None and facts.rewards
    assert isinstance(json.loads(cached.read_text()), dict)


def test_the_hub_is_probed_by_name_before_an_environment_loads(monkeypatch):
    from vft.core.planning.environment_facts import hub_reachable

    assert hub_reachable({"HF_ENDPOINT": "http://127.0.0.1:9"}) is True
    assert hub_reachable({"HF_ENDPOINT": "https://no-such-host.invalid"}) is False
    assert hub_reachable({"HF_HUB_OFFLINE": "1"}) is False


@pytest.mark.slow
def test_an_environment_on_an_unreachable_hub_fails_fast_in_offline_mode(monkeypatch):
    """gsm8k's data is on the Hub: unreachable, the Hub client would retry for ~25 s."""
    import time

    from vft.core.planning.environment_facts import describe_environment

    monkeypatch.setenv("HF_ENDPOINT", "https://no-such-host.invalid")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    started = time.monotonic()
    try:  # loads when the data is in this machine's Hub cache; else says it is offline
        describe_environment("gsm8k", {})
    except PlanError as exc:
        assert "Couldn't reach" in exc.message or "offline" in exc.message.lower()
    assert time.monotonic() - started < 15
