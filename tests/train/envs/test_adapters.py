"""The environment adapters on their own: both Verifiers APIs, against a scripted server.

The server is real HTTP on 127.0.0.1 (`fake_openai.py`), speaking vLLM's token-id
extension; the environments are the third-party-style packages in `packages/`, loaded
from their folders. Nothing here needs torch or a GPU.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.envs.fake_openai import FakeServer, tool_args

pytest.importorskip("verifiers")

PACKAGES = Path(__file__).parent / "packages"
ROOT = Path(__file__).resolve().parents[3]
FOLDERS = [
    PACKAGES / "vfx_xml_math",
    PACKAGES / "vfx_guess",
    PACKAGES / "vfx_calc_tool",
    PACKAGES / "vfx_opening",
    PACKAGES / "vfx_adder",
    PACKAGES / "vfx_v1_opening",
    PACKAGES / "vfx_hatch" / "src",
]


@pytest.fixture(autouse=True)
def _packages(monkeypatch, tmp_path):
    for folder in FOLDERS:
        monkeypatch.syspath_prepend(str(folder))
    # subprocesses (v1 tool servers, harness programs) import them too
    path = [str(f) for f in FOLDERS] + [os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in path if p))
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("VFX_MARKERS", str(markers))
    return markers


def load(env_id: str, args: dict | None = None):
    from vft.train import envs

    return envs.load(env_id, args or {})


def server(srv: FakeServer):
    from vft.train.envs import Server

    return Server(srv.base_url, "fake")


def run(coro):
    return asyncio.run(coro)


# -- detection and facts ---------------------------------------------------------------


def test_detects_both_apis_and_refuses_a_plain_module(tmp_path, monkeypatch):
    from vft.train import envs

    assert envs.detect(envs.find_module("vfx_xml_math")) == "legacy"
    assert envs.detect(envs.find_module("vfx_adder")) == "v1"
    assert envs.detect(envs.find_module("gsm8k")) == "legacy"  # built in
    assert envs.detect(envs.find_module("reverse_text")) == "v1"  # built in
    (tmp_path / "not_an_env.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match="not a Verifiers environment"):
        envs.detect(envs.find_module("not_an_env"))
    with pytest.raises(envs.EnvironmentNotFound):
        envs.find_module("no_such_env_anywhere")


def test_classic_single_turn_facts():
    f = load("vfx_xml_math").facts()
    assert f["api"] == "legacy" and not f["multi_turn"] and not f["uses_tools"]
    assert not f["needs_server"] and f["agents"] == ["agent"]
    assert f["rewards"] == [
        {"name": "correct_answer", "weight": 1.0},
        {"name": "format_reward_func", "weight": 0.2},
        {"name": "short_reply", "weight": 0.1},
    ]
    assert "reply_chars" in f["metrics"] and "num_turns" in f["metrics"]
    assert f["eval_split"] == {"present": True, "size": 4} and f["train_size"] == 16
    assert f["accepted_args"] == ["num_examples", "explode", "format_weight"]
    assert f["source"].endswith("vfx_xml_math/__init__.py")


def test_classic_multi_turn_and_tool_facts():
    guess = load("vfx_guess").facts()
    assert guess["multi_turn"] and guess["needs_server"] and not guess["uses_tools"]
    assert not guess["eval_split"]["present"]
    tool = load("vfx_calc_tool").facts()
    assert tool["uses_tools"] and tool["multi_turn"]
    assert {"total_tool_calls", "calculate_calls"} <= set(tool["metrics"])


def test_v1_toolset_facts():
    f = load("vfx_adder", {"num_tasks": 2}).facts()
    assert f["api"] == "v1" and f["uses_tools"] and f["needs_server"]
    assert f["rewards"] == [
        {"name": "correct", "weight": 1.0},
        {"name": "used_tool", "weight": 0.5},
    ]
    assert f["metrics"] == ["tool_calls"]
    assert f["runtime_signals"] == ["used_tool"]
    assert f["harness"] == "null" and not f["harness_executes_code"]
    assert f["eval_split"]["present"] is False and f["train_size"] == 2
    assert "num_tasks" in f["accepted_args"]


# -- offline scoring (single-turn) -----------------------------------------------------


def test_classic_rubric_scores_a_reply_generated_elsewhere():
    a = load("vfx_xml_math")
    row = a.rows()[1]  # What is 1 + 2?
    good, wrong = run(a.score_group(row, ["<think>\nx\n</think>\n<answer>\n3\n</answer>", "7"]))
    assert good.rewards["correct_answer"] == 1.0 and good.rewards["format_reward_func"] > 0.5
    assert good.reward == pytest.approx(
        1.0 + 0.2 * good.rewards["format_reward_func"] + 0.1 * good.rewards["short_reply"]
    )
    assert wrong.rewards["correct_answer"] == 0.0 and wrong.rewards["short_reply"] == 1.0
    assert wrong.metrics["reply_chars"] == 1.0


def test_v1_task_scores_a_reply_generated_elsewhere():
    a = load("reverse_text", {"num_examples": 2})
    row = a.rows()[0]
    text = row.data.data.text
    (r,) = run(a.score_group(row, [f"<reversed>{text[::-1]}</reversed>"]))
    assert r.rewards == {"reversed_similarity": 1.0} and r.metrics == {"uses_tags": 1.0}
    assert r.reward == 1.0


def test_builtin_gsm8k_scores_boxed_answers():
    a = load("gsm8k", {"dataset": "fixture"})
    row = a.rows()[0]
    right, boxed, bare = run(
        a.score_group(row, ["48 / 2 = 24, 48 + 24 = 72. \\boxed{72}", "\\boxed{71}", "72"])
    )
    assert right.reward == pytest.approx(1.2)
    assert boxed.reward == pytest.approx(0.2)
    assert bare.reward == 0.0


# -- episodes against a server ---------------------------------------------------------


def guesser(messages, tools):
    """Binary search over 1..9 from the environment's higher/lower answers."""
    lo, hi, last = 1, 9, None
    for m in messages:
        if m["role"] == "assistant":
            last = int(m["content"])
        elif m["role"] == "user" and last is not None:
            if m["content"] == "higher":
                lo = last + 1
            elif m["content"] == "lower":
                hi = last - 1
    return str((lo + hi) // 2), None


def test_classic_multi_turn_episode_runs_the_environment_loop(_packages):
    a = load("vfx_guess", {"max_turns": 4})
    row = a.rows()[0]  # target 1
    with FakeServer(guesser) as srv:
        results = run(a.rollout_group(row, 2, server(srv), {"temperature": 1.0, "max_tokens": 64}))
    r = results[0]
    assert r.turns == 3 and r.rewards == {"solved": 1.0, "efficiency": pytest.approx(1 / 3)}
    assert r.reward == pytest.approx(1 + 0.5 / 3)
    assert r.metrics["num_turns"] == 3.0
    assert "guess=5 target=1" in (_packages / "vfx_guess.log").read_text()
    s = r.sample()
    assert s is not None and s.complete
    assert len(s.completion_ids) == len(s.env_mask) == len(s.logprobs)
    model = bytes(t for t, m in zip(s.completion_ids, s.env_mask, strict=True) if m).decode()
    env = bytes(t for t, m in zip(s.completion_ids, s.env_mask, strict=True) if not m).decode()
    assert model == "5<|end|>2<|end|>1<|end|>"
    assert env == "<|user|>lower<|end|><|assistant|><|user|>lower<|end|><|assistant|>"
    assert all(lp == -0.5 for lp, m in zip(s.logprobs, s.env_mask, strict=True) if m)
    assert all(lp is None for lp, m in zip(s.logprobs, s.env_mask, strict=True) if not m)


def test_classic_tool_env_runs_its_tool(_packages):
    a = load("vfx_calc_tool")
    row = a.rows()[0]  # 2 * 7

    def policy(messages, tools):
        if messages[-1]["role"] == "tool":
            return f"<answer>{messages[-1]['content']}</answer>", None
        t = tools[0]
        return None, [
            {"function": {"name": t["function"]["name"], "arguments": tool_args(t, "2*7")}}
        ]

    with FakeServer(policy) as srv:
        (r,) = run(a.rollout_group(row, 1, server(srv), {"temperature": 1.0, "max_tokens": 64}))
        sent = srv.requests[0]["body"]
    assert [t["function"]["name"] for t in sent["tools"]] == ["calculate"]
    assert sent["extra_body" if "extra_body" in sent else "return_token_ids"]
    assert r.tool_calls == 1 and r.turns == 2
    assert r.rewards == {"correct": 1.0, "used_calculator": 1.0}
    assert r.metrics["total_tool_calls"] == 1.0 and r.metrics["calculate_calls"] == 1.0
    assert (_packages / "vfx_calc_tool.log").read_text() == "calculate('2*7')\n"
    s = r.sample()
    env = bytes(t for t, m in zip(s.completion_ids, s.env_mask, strict=True) if not m).decode()
    assert env == "<|tool|>14<|end|><|assistant|>"


def test_classic_environment_that_writes_its_opening(_packages):
    a = load("vfx_opening")
    row = a.rows()[0]
    assert row.prompt == []  # nothing to show the model before the environment speaks
    with FakeServer(lambda messages, tools: ("enots", None)) as srv:
        (r,) = run(a.rollout_group(row, 1, server(srv), {"max_tokens": 64}))
        first = srv.requests[0]["body"]["messages"]
    assert first == [{"role": "user", "content": "spell stone backwards"}]
    assert r.turns == 2 and r.rewards == {"reversed_word": 1.0}
    assert "opened stone" in (_packages / "vfx_opening.log").read_text()


def test_a_reward_function_that_raises_is_an_error_not_a_zero():
    from vft.train.envs import EnvironmentCodeError

    a = load("vfx_xml_math", {"explode": True})
    with pytest.raises(EnvironmentCodeError) as info:
        run(a.score_group(a.rows()[0], ["<answer>1</answer>"]))
    line = info.value.line()
    assert line.startswith("environment vfx_xml_math: ZeroDivisionError: division by zero (at ")
    assert re.search(r"vfx_xml_math/__init__\.py:\d+\)$", line)
    with (
        FakeServer(lambda m, t: ("<answer>1</answer>", None)) as srv,
        pytest.raises(EnvironmentCodeError, match="ZeroDivisionError"),
    ):
        run(a.rollout_group(a.rows()[0], 2, server(srv), {"max_tokens": 64}))


def test_an_environment_loop_that_raises_is_an_error(monkeypatch):
    from vft.train.envs import EnvironmentCodeError

    a = load("vfx_guess")

    async def broken(messages, state, **kwargs):
        raise KeyError("no such secret")

    monkeypatch.setattr(a.env, "env_response", broken)
    with (
        FakeServer(guesser) as srv,
        pytest.raises(EnvironmentCodeError, match="KeyError: 'no such secret'"),
    ):
        run(a.rollout_group(a.rows()[0], 1, server(srv), {"max_tokens": 64}))


def test_a_dead_server_is_a_server_error_not_an_environment_one():
    from vft.train.envs import InferenceServerError, Server

    a = load("vfx_guess")
    with pytest.raises(InferenceServerError):
        run(a.rollout_group(a.rows()[0], 1, Server("http://127.0.0.1:9/v1", "m"), {}))


@pytest.mark.slow
def test_v1_toolset_episode_through_its_harness(_packages):
    """The taskset's own loop: v1's `null` harness program (on the trainer's Python, no
    uv) calls the server, the tool server runs the tool, the runtime-dependent reward
    reads its file."""
    a = load("vfx_adder", {"num_tasks": 1})
    row = a.rows()[0]  # 3 + 4

    def policy(messages, tools):
        if messages[-1]["role"] == "tool":
            return f"<answer>{messages[-1]['content']}</answer>", None
        t = next(t for t in tools if t["function"]["name"].endswith("add"))
        return None, [
            {"function": {"name": t["function"]["name"], "arguments": '{"a": 3, "b": 4}'}}
        ]

    async def go():
        try:
            return await a.rollout_group(
                row, 1, server(srv), {"temperature": 1.0, "max_tokens": 16}
            )
        finally:
            await a.aclose()

    with FakeServer(policy) as srv:
        (r,) = run(go())
    assert r.rewards == {"correct": 1.0, "used_tool": 1.0} and r.reward == 1.5
    assert r.metrics == {"tool_calls": 1.0} and r.tool_calls == 1
    assert "add(3, 4)" in (_packages / "vfx_adder.log").read_text()
    s = r.sample()
    assert s is not None and sum(s.env_mask) > 0 and 0 in s.env_mask


@pytest.mark.slow
def test_v1_episode_the_environment_opens(_packages):
    """Tasks with `prompt=None`: the env's own `run()` writes the opening, two turns."""
    a = load("vfx_v1_opening", {"num_tasks": 1})
    f = a.facts()
    assert f["multi_turn"] and f["needs_server"] and f["agents"] == ["player"]
    row = a.rows()[0]
    assert row.prompt == []

    async def go():
        try:
            return await a.rollout_group(row, 1, server(srv), {"max_tokens": 64})
        finally:
            await a.aclose()

    with FakeServer(lambda messages, tools: ("enots", None)) as srv:
        (r,) = run(go())
        first = srv.requests[0]["body"]["messages"]
    assert first == [{"role": "user", "content": "spell stone backwards"}]
    assert r.turns == 2 and r.rewards == {"reversed_word": 1.0}
    assert r.metrics == {"reply_chars": 10.0}
    s = r.sample()
    env = bytes(t for t, m in zip(s.completion_ids, s.env_mask, strict=True) if not m).decode()
    assert s.complete and env == "<|user|>once more<|end|><|assistant|>"
    assert (_packages / "vfx_v1_opening.log").read_text() == "opened stone\n"


# -- the TRL glue ------------------------------------------------------------------------


def test_rollout_func_groups_duplicates_and_weights_sum_to_the_total():
    from vft.train.envs.trl_glue import RESULT_KEY, TrlGlue

    a = load("vfx_guess")
    with FakeServer(guesser) as srv:
        glue = TrlGlue(a, rollout=True, server=server(srv), sampling={"max_tokens": 64})
        try:
            ds = glue.train_dataset()
            prompts = [ds[0]["prompt"]] * 2 + [ds[1]["prompt"]] * 2
            out = glue.rollout_func(prompts, None)
            funcs = glue.reward_funcs()
            names = [f.__name__ for f in funcs]
            scores = {
                f.__name__: f(prompts=prompts, completions=None, **{RESULT_KEY: out[RESULT_KEY]})
                for f in funcs
            }
        finally:
            glue.close()
    assert names == [
        "solved",
        "efficiency",
        "metric/num_turns",
        "episode/turns",
        "episode/tool_calls",
        "episode/untrained",
    ]
    assert glue.reward_weights() == [1.0, 0.5, 0.0, 0.0, 0.0, 0.0]
    assert glue.metric_names()["solved"] == "reward/solved"
    assert glue.metric_names()["metric/num_turns"] == "metric/num_turns"
    assert {len(v) for v in out.values()} == {4}
    for i, r in enumerate(out[RESULT_KEY]):
        total = sum(w * scores[n][i] for n, w in zip(names, glue.reward_weights(), strict=True))
        assert total == pytest.approx(r.reward)
    assert scores["episode/turns"][0] >= 2 and scores["episode/untrained"] == [0.0] * 4


def test_score_mode_rewards_come_from_the_rubric():
    from vft.train.envs.trl_glue import ROW_KEY, TrlGlue

    a = load("vfx_xml_math")
    glue = TrlGlue(a, rollout=False)
    try:
        ds = glue.train_dataset()
        assert (
            ds[1]["prompt"][0]["role"] == "system"
            and ds[1]["prompt"][-1]["content"] == "What is 1 + 2?"
        )
        completions = [[{"role": "assistant", "content": c}] for c in ("<answer>3</answer>", "no")]
        kw = {ROW_KEY: [ds[1][ROW_KEY]] * 2}
        out = {
            f.__name__: f(prompts=None, completions=completions, **kw) for f in glue.reward_funcs()
        }
    finally:
        glue.close()
    assert out["correct_answer"] == [1.0, 0.0]
    assert out["metric/reply_chars"] == [18.0, 2.0]
    with pytest.raises(ValueError, match="need an inference server"):
        TrlGlue(load("vfx_guess"), rollout=False)


def test_a_total_that_is_not_the_weighted_sum_is_refused():
    from vft.train.envs import EnvironmentCodeError, Result
    from vft.train.envs.trl_glue import TrlGlue

    glue = TrlGlue(load("vfx_hatch"), rollout=False)
    try:
        glue.check_total(Result(reward=1.5, rewards={"echoed": 1.0, "brevity": 1.0}, metrics={}))
        with pytest.raises(EnvironmentCodeError, match="not the weighted sum"):
            glue.check_total(
                Result(reward=2.0, rewards={"echoed": 1.0, "brevity": 1.0}, metrics={})
            )
    finally:
        glue.close()


def test_stitch_cuts_at_a_rewritten_history():
    from vft.train.envs.base import TurnTokens, stitch

    s = stitch([TurnTokens([1, 2], [3, 4], [-0.1, -0.2]), TurnTokens([1, 2, 3, 4, 5], [6], [-0.3])])
    assert (s.prompt_ids, s.completion_ids, s.env_mask) == ([1, 2], [3, 4, 5, 6], [1, 1, 0, 1])
    assert s.logprobs == [-0.1, -0.2, None, -0.3] and s.complete
    cut = stitch([TurnTokens([1, 2], [3, 4], [0, 0]), TurnTokens([1, 9, 9], [6], [0])])
    assert cut.completion_ids == [3, 4] and not cut.complete


# -- describe ----------------------------------------------------------------------------


def _describe(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(f) for f in FOLDERS] + [str(ROOT)])
    return subprocess.run(
        [sys.executable, "-m", "vft.train.envs.describe", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
    )


def test_describe_prints_facts_and_one_line_errors():
    done = _describe("vfx_xml_math", "--args", '{"num_examples": 3}')
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["train_size"] == 3 and facts["api"] == "legacy"
    from vft.core.planning.environment_facts import EnvironmentFacts

    f = EnvironmentFacts.from_dict(facts)
    assert [r.name for r in f.rewards] == ["correct_answer", "format_reward_func", "short_reply"]
    assert f.eval_split and f.eval_size == 3

    bad = _describe("vfx_xml_math", "--args", '{"bogus": 1}')  # refused before it loads
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "environment.args: 'vfx_xml_math' does not accept 'bogus' "
        "(accepted: num_examples, explode, format_weight)"
    ]

    missing = _describe("no_such_env_xyz")
    assert missing.returncode == 2 and "not installed" in missing.stderr
