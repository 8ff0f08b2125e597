"""The trainer's pure parts: GRPOConfig from a plan, checkpoints across attempts, metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vft.core.plan import Plan
from vft.launch import prepare
from vft.train.checkpoints import latest_checkpoint, resolve_resume
from vft.train.config import grpo_kwargs, wandb_enabled
from vft.train.metrics import progress_line

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "recipes"


def plan_dict(recipe: str, *overrides: str) -> Plan:
    """The plan as the trainer reads it: back from its JSON."""
    return Plan.from_json(prepare(EXAMPLES / recipe, overrides, "local").plan.to_json())


def test_cpu_plan_generates_in_process():
    kw = grpo_kwargs(plan_dict("smoke.toml"), "/runs/smoke/attempt-1", {})
    assert kw["use_vllm"] is False and kw["use_cpu"] is True and kw["bf16"] is False
    assert kw["output_dir"] == "/runs/smoke/attempt-1/checkpoints"
    assert (
        kw["num_generations"] == 4
        and kw["max_steps"] == 150
        and kw["lr_scheduler_type"] == "constant"
    )
    assert kw["max_completion_length"] == 8 and kw["save_steps"] == 75
    assert kw["report_to"] == []


def test_gpu_plan_generates_on_the_plans_server():
    plan = plan_dict("gsm8k.toml")
    env = {"VFT_INFERENCE_URL": "http://10.0.0.5:8123", "VFT_WEIGHT_SYNC_PORT": "52000"}
    kw = grpo_kwargs(plan, "/r", env, bf16_supported=True)
    assert kw["use_vllm"] is True and kw["vllm_mode"] == "server"
    assert kw["vllm_server_base_url"] == "http://10.0.0.5:8123"
    assert kw["vllm_group_port"] == 52000
    assert kw["bf16"] is True and kw["use_cpu"] is False
    assert kw["gradient_accumulation_steps"] == 8 and kw["learning_rate"] == 1e-6
    # without the env, the plan's own port and loopback
    kw = grpo_kwargs(plan, "/r", {})
    assert kw["vllm_server_base_url"] == f"http://127.0.0.1:{plan.inference.port}"
    assert kw["vllm_group_port"] == plan.inference.weight_sync_port


def test_bf16_follows_the_recipe_when_set():
    kw = grpo_kwargs(plan_dict("gsm8k.toml", "trainer.bf16=false"), "/r", {}, bf16_supported=True)
    assert kw["bf16"] is False


def test_wandb_only_with_a_project_and_a_key():
    with_project = plan_dict("smoke.toml", "logging.wandb_project=p")
    assert wandb_enabled(with_project, {"WANDB_API_KEY": "k"})
    assert not wandb_enabled(with_project, {})
    assert not wandb_enabled(plan_dict("smoke.toml"), {"WANDB_API_KEY": "k"})
    kw = grpo_kwargs(plan_dict("gsm8k.toml"), "/r", {"WANDB_API_KEY": "k"})
    assert kw["report_to"] == ["wandb"]


def _checkpoint(run: Path, attempt: int, step: int, complete: bool = True) -> Path:
    path = run / f"attempt-{attempt}" / "checkpoints" / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def test_latest_checkpoint_looks_across_attempts(tmp_path):
    run = tmp_path / "smoke"
    _checkpoint(run, 1, 2)
    best = _checkpoint(run, 1, 10)
    _checkpoint(run, 2, 4)
    _checkpoint(run, 3, 12, complete=False)  # interrupted while saving: skipped
    (run / "attempt-4").mkdir()
    assert latest_checkpoint(run / "attempt-4") == best
    newer = _checkpoint(run, 3, 10)  # same step, newer attempt wins
    assert resolve_resume("latest", run / "attempt-4") == newer


def test_resume_latest_without_checkpoints_starts_fresh(tmp_path):
    (tmp_path / "r" / "attempt-1").mkdir(parents=True)
    assert resolve_resume("latest", tmp_path / "r" / "attempt-1") is None
    assert resolve_resume(None, tmp_path) is None
    with pytest.raises(FileNotFoundError, match="resume_from_checkpoint"):
        resolve_resume(str(tmp_path / "nope"), tmp_path)


def test_progress_line():
    row = {"step": 3, "reward": 0.41234, "reward_std": 0.12, "loss": 0.01234, "tokens_per_s": 812.4}
    assert progress_line(row, 10, 65.0) == (
        "step 3/10 | reward 0.412 ± 0.120 | loss 0.0123 | 812 tok/s | ETA 1m05s"
    )
    assert progress_line({"step": 1}, 2, None).endswith("- tok/s | ETA -")


def test_tiny_model_builds_identically(tmp_path):
    from vft.train import tiny

    a, b = tiny.build(tmp_path / "a"), tiny.build(tmp_path / "b")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    from transformers import AutoTokenizer

    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    tok = AutoTokenizer.from_pretrained(a)
    assert tok.padding_side == "left"  # saved with the tokenizer, not only set in memory
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Hi There"}], tokenize=False, add_generation_prompt=True
    )
    assert tok.decode(tok(text)["input_ids"]) == "<|user|>Hi There<|end|><|assistant|>"
    # one token per character, case kept, every printable ASCII character round-trips
    reply = "ABC 123\n\tx!~"
    assert len(tok(reply)["input_ids"]) == len(reply)
    assert tok.decode(tok(reply)["input_ids"]) == reply
    assert tok.convert_ids_to_tokens(tok("é")["input_ids"]) == ["<unk>"]


def test_trainer_entry_without_a_plan_exits_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "vft.train", "--run-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "plan.json does not exist" in done.stderr and "Traceback" not in done.stderr


def test_reward_weights_and_eval_batch_reach_grpo_config():
    # the smoke environment has no eval split (vft plan refuses eval_steps for it): plan
    # without loading the environment, to see only what reaches GRPOConfig
    prepared = prepare(EXAMPLES / "smoke.toml", ("trainer.eval_steps=2",), check_paths=False)
    plan = Plan.from_json(prepared.plan.to_json())
    kw = grpo_kwargs(plan, "/r", {}, reward_weights=[1.0, 0.2, 0.0])
    assert kw["reward_weights"] == [1.0, 0.2, 0.0]
    assert kw["eval_strategy"] == "steps" and kw["eval_steps"] == 2
    assert kw["per_device_eval_batch_size"] == kw["per_device_train_batch_size"]
    assert "reward_weights" not in grpo_kwargs(plan_dict("smoke.toml"), "/r", {})


def test_metrics_get_stable_names():
    from vft.train.metrics import eval_line, stable_names

    names = {"correct": "reward/correct", "metric/num_turns": "metric/num_turns"}
    logs = {
        "reward": 1.2,
        "reward_std": 0.1,
        "rewards/correct/mean": 1.0,
        "rewards/correct/std": 0.0,
        "rewards/metric/num_turns/mean": 2.5,
        "rewards/metric/num_turns/std": 0.5,
        "rewards/episode/turns/mean": 2.5,
        "loss": 0.1,
    }
    assert stable_names(logs, names | {"episode/turns": "episode/turns"}) == {
        "reward": 1.2,
        "reward_std": 0.1,
        "reward/correct": 1.0,
        "reward/correct/std": 0.0,
        "metric/num_turns": 2.5,
        "episode/turns": 2.5,
        "loss": 0.1,
    }
    ev = stable_names(
        {"eval_reward": 0.5, "eval_rewards/correct/mean": 0.5, "eval_loss": 0.0}, names
    )
    assert ev == {"eval/reward": 0.5, "eval/reward/correct": 0.5, "eval/loss": 0.0}
    assert eval_line({"step": 4, **ev}) == "eval at step 4 | reward 0.500 ± - | correct 0.500"


def test_the_eta_leaves_out_the_first_steps_warm_up(tmp_path, capsys, monkeypatch):
    """Step 1 carries the warm-up (8 s here against 1 s a step after): it must not make the
    ETA minutes too long. No ETA at the first step; then the speed since it."""
    from types import SimpleNamespace

    from vft.train.metrics import MetricsCallback

    callback = MetricsCallback(tmp_path, tensorboard=False)
    clock = iter([0.0, 0.0, 8.0, 9.0, 10.0])
    state = SimpleNamespace(
        global_step=0, max_steps=10, num_input_tokens_seen=0, is_world_process_zero=True
    )
    import vft.train.metrics as metrics

    monkeypatch.setattr(metrics.time, "time", lambda: next(clock))
    callback.on_train_begin(None, state, None)
    for step in (1, 2, 3):
        state.global_step = step
        callback.on_log(None, state, None, logs={"reward": 0.5, "num_tokens": 10.0 * step})
    monkeypatch.undo()
    etas = [line.rsplit("ETA ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert etas == ["-", "0m08s", "0m07s"]  # 1 s a step since step 1: 8 and 7 steps left
