"""The built-in trainer: `python -m vft.train --run-dir DIR`, run under `accelerate launch`.

Everything comes from DIR/plan.json (the plan is the source of truth): the recipe's
model, environment and `[trainer]`, the inference server of a GPU plan. Checkpoints go
to DIR/checkpoints/, metrics to DIR/metrics.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from vft.core.plan import Plan
from vft.train import environment, tiny
from vft.train.checkpoints import checkpoint_step, resolve_resume
from vft.train.config import colocated, grpo_kwargs, server_url
from vft.train.rollout import TASK_KEY

INITIAL_MODEL = "initial-model"


def model_path(name: str, run_dir: Path) -> str:
    """The model to load: a hub id or path as written, or the offline-built `vft-tiny`."""
    if not tiny.is_tiny(name):
        return name
    dest = run_dir / INITIAL_MODEL
    if (dest / "vft-tiny.json").is_file():
        return str(dest)
    # every process of the launch may get here: build privately, then rename into place
    tmp = run_dir / f".{INITIAL_MODEL}-{os.getpid()}"
    tiny.build(tmp)
    try:
        tmp.rename(dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(dest)


def dataset_rows(loaded: environment.LoadedEnvironment) -> list[dict[str, Any]]:
    rows = []
    for i, task in enumerate(loaded.tasks):
        messages = [{**m, TASK_KEY: i} for m in environment.prompt_messages(task)]
        rows.append({"prompt": messages, TASK_KEY: i})
    return rows


def make_reward(loaded: environment.LoadedEnvironment) -> Any:
    """TRL reward function: the environment's own rewards, per completion."""

    def reward(
        prompts: list[Any],
        completions: list[Any],
        vft_task: list[int],
        vft_reward: list[float] | None = None,
        **_: Any,
    ) -> list[float]:
        if vft_reward is not None:  # multi-turn: scored at the end of the episode
            return [float(r) for r in vft_reward]

        async def all_scores() -> list[float]:
            jobs = []
            for prompt, completion, index in zip(prompts, completions, vft_task, strict=True):
                task = loaded.tasks[int(index)]
                messages = [{"role": m["role"], "content": m["content"]} for m in prompt]
                if isinstance(completion, str):
                    messages.append({"role": "assistant", "content": completion})
                else:
                    messages += [{"role": m["role"], "content": m["content"]} for m in completion]
                jobs.append(environment.score_trace(task, environment.trace_of(task, messages)))
            return list(await asyncio.gather(*jobs))

        return asyncio.run(all_scores())

    reward.__name__ = loaded.env_id
    return reward


def train(plan: Plan, run_dir: Path) -> Path | None:
    """Run GRPO for the plan; return the last checkpoint written."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from vft.train.metrics import MetricsCallback, SaveAtEndCallback
    from vft.train.rollout import make_env, rollout_func

    t = plan.trainer.training
    model = model_path(plan.trainer.model, run_dir)
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    env_cfg = plan.trainer.environment
    loaded = environment.load(env_cfg.id, dict(env_cfg.args))
    bf16_ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    args = GRPOConfig(**grpo_kwargs(plan, run_dir, bf16_supported=bf16_ok))

    extra: dict[str, Any] = {}
    if loaded.multi_turn:
        url = server_url(plan, os.environ)
        if not args.use_vllm or url is None:
            kind = "a colocated plan (vLLM inside the trainer)" if colocated(plan) else "a CPU plan"
            raise SystemExit(
                f"vft.train: environment {loaded.env_id!r} is multi-turn and rolls out on the "
                f"plan's vLLM server; {kind} has none (plan at least 2 GPUs, without "
                "inference.colocate = true)"
            )
        env = make_env(loaded, dict(env_cfg.args))
        extra["rollout_func"] = rollout_func(
            loaded, env, tokenizer, url, max_tokens=t.max_tokens, temperature=t.temperature
        )

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[make_reward(loaded)],
        args=args,
        train_dataset=Dataset.from_list(dataset_rows(loaded)),
        processing_class=tokenizer,
        callbacks=[MetricsCallback(run_dir), SaveAtEndCallback()],
        **extra,
    )
    trainer.remove_callback(PrinterCallback)  # our progress line replaces the raw dict dump
    resume = resolve_resume(t.resume_from_checkpoint, run_dir)
    main = trainer.accelerator.is_main_process
    if main:
        where = (
            "in-process"
            if not args.use_vllm
            else "with vLLM colocated in the trainer"
            if args.vllm_mode == "colocate"
            else f"on {args.vllm_server_base_url}"
        )
        print(
            f"vft.train: {plan.name}: {plan.trainer.model} on {loaded.env_id} "
            f"({len(loaded.tasks)} tasks), {args.max_steps} steps, generation {where}",
            flush=True,
        )
        if resume is not None:
            print(f"vft.train: resuming from {resume} (step {checkpoint_step(resume)})", flush=True)
        elif t.resume_from_checkpoint == "latest":
            print("vft.train: no earlier checkpoint of this run; starting at step 0", flush=True)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    last = Path(str(args.output_dir)) / f"checkpoint-{trainer.state.global_step}"
    if main:
        print(f"vft.train: done at step {trainer.state.global_step}; checkpoint {last}", flush=True)
    return last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vft.train", description=__doc__)
    parser.add_argument("--run-dir", required=True, help="the attempt folder holding plan.json")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir).resolve()
    plan_file = run_dir / "plan.json"
    if not plan_file.is_file():
        print(f"vft.train: error: {plan_file} does not exist", file=sys.stderr)
        return 2
    plan = Plan.from_json(plan_file.read_text())
    try:
        train(plan, run_dir)
    except FileNotFoundError as exc:  # e.g. resume_from_checkpoint names no checkpoint
        print(f"vft.train: error: {exc}", file=sys.stderr)
        return 2
    return 0
