"""The built-in trainer: `python -m vft.train --run-dir DIR`, run under `accelerate launch`.

Everything comes from DIR/plan.json (the plan is the source of truth): the recipe's
model, environment and `[trainer]`, the inference server of a served plan. Checkpoints
go to DIR/checkpoints/, metrics to DIR/metrics.jsonl.

The environment (`vft.train.envs`, either Verifiers API) decides how episodes run:

- on a plan with an inference server, TRL's `rollout_func` runs the environment's own
  loop against it (single- and multi-turn, tools), except for a plain single-turn v1
  taskset, which TRL generates for through its vLLM path and the task scores;
- without a server (a CPU plan generating in-process, a colocated GPU plan), only
  single-turn environments train: TRL generates, the rubric / task scores the reply.

An exception raised by the environment's code ends the trainer with exit code 1 and,
last on stderr, `vft.train: error: environment ENV_ID: <Type>: <message> (at FILE:LINE)`.

What it prints for the user starts with `vft.train: ` (vft/train/console.py): the phases
of its start-up, one progress line per step, checkpoints, its verdict. The quiet console
shows those lines only; the libraries' output stays in logs/trainer.log.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from vft.core.plan import Plan
from vft.train import cpu_stack, tiny
from vft.train.budget_stop import BudgetStop, CheckpointMarker
from vft.train.checkpoints import checkpoint_step, resolve_resume
from vft.train.config import colocated, grpo_kwargs, server_url
from vft.train.console import Phases, marked, say

INITIAL_MODEL = "initial-model"


class TrainerRefusal(Exception):
    """The plan cannot train this environment (one line, exit code 2)."""


def model_path(name: str, run_dir: Path) -> str:
    """The model to load: a hub id or path as written, or the offline-built `vft-tiny`."""
    if not tiny.is_tiny(name):
        return name
    dest = run_dir / INITIAL_MODEL
    if (dest / "vft-tiny.json").is_file():
        return str(dest)
    # every process of the launch may get here: build privately, then rename into place
    say(f"building the model {name} (random weights, offline)...")
    tmp = run_dir / f".{INITIAL_MODEL}-{os.getpid()}"
    tiny.build(tmp)
    try:
        tmp.rename(dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(dest)


def generation_mode(adapter: Any, served: bool) -> bool:
    """True: rollouts through the environment's own loop (`rollout_func`) on the server;
    False: TRL generates and the environment scores."""
    if adapter.needs_server:
        return True
    return served and adapter.api == "legacy"


def without_vllm() -> bool:
    """Tell TRL that vLLM is not there, before TRL is imported, for a plan that does not
    use it: TRL imports vLLM eagerly when it is installed (half of TRL's import time on a
    CPU). True when that was done."""
    try:
        import trl.import_utils as trl_imports
    except ImportError:
        return False
    if not callable(getattr(trl_imports, "is_vllm_available", None)):
        return False
    trl_imports.is_vllm_available = _no_vllm
    return True


def _no_vllm(*args: Any, **kwargs: Any) -> bool:
    return False


def prepare_deepspeed(plan: Plan) -> None:
    """Before DeepSpeed starts: its compiled ops cached per environment, the op a single
    process never calls not built, and a phase line when a compile is coming."""
    root = cpu_stack.use_extensions_cache()
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if plan.is_cpu and plan.trainer.zero_stage is not None:
        cpu_stack.skip_unused_shm_op(world)
    building = cpu_stack.ops_to_build(
        cpu=plan.is_cpu,
        deepspeed=plan.trainer.zero_stage is not None,
        offload=plan.trainer.offload_optimizer,
        world_size=world,
        root=root,
    )
    for _, what, took in building:
        where = f"; cached in {root}" if root is not None else ""
        say(f"compiling {what}, first run only, {took}{where}...")


def train(plan: Plan, run_dir: Path, started: float | None = None) -> Path | None:
    """Run GRPO for the plan; return the last checkpoint written. `started` is the
    monotonic time the program started (for the start-up line)."""
    phases = Phases(started)
    phases.start("imports", "loading torch, transformers and TRL...")
    if not grpo_kwargs(plan, run_dir)["use_vllm"]:
        without_vllm()
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, PrinterCallback, TrainerCallback
    from trl import GRPOConfig

    from vft.train import envs
    from vft.train.envs.trl_glue import TrlGlue, discover_server
    from vft.train.metrics import MetricsCallback, SaveAtEndCallback
    from vft.train.weight_sync import grpo_trainer_class

    class Metrics(MetricsCallback):
        """The progress line, marked for the console."""

        def on_log(self, *args: Any, **kwargs: Any) -> None:
            with marked():
                super().on_log(*args, **kwargs)

    class Saved(TrainerCallback):
        """A phase line for each checkpoint, once it is written."""

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                say(f"checkpoint saved: checkpoints/checkpoint-{state.global_step}")

    loading = None if tiny.is_tiny(plan.trainer.model) else f"loading {plan.trainer.model}..."
    phases.start("model", loading)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func: vft's, on purpose
    t = plan.trainer.training
    model = model_path(plan.trainer.model, run_dir)
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    env_cfg = plan.trainer.environment
    phases.start("environment", f"loading the environment {env_cfg.id}...")
    adapter = envs.load(env_cfg.id, dict(env_cfg.args))  # the main thread: signal handlers
    url = server_url(plan, os.environ)
    served = plan.inference.served and url is not None
    rollout = generation_mode(adapter, served)
    if rollout and not served:
        kind = "a colocated plan (vLLM inside the trainer)" if colocated(plan) else "a CPU plan"
        what = (
            "multi-turn"
            if adapter.multi_turn
            else "tool-using"
            if adapter.uses_tools
            else "episode-based"
        )
        raise TrainerRefusal(
            f"environment {env_cfg.id!r} is {what}: its episodes run on an inference server, "
            f"and {kind} generating in-process has none (set inference.colocate = false)"
        )
    sampling = {"temperature": t.temperature, "max_tokens": t.max_tokens}
    glue = TrlGlue(
        adapter,
        rollout=rollout,
        sampling=sampling,
        server=(lambda: discover_server(url)) if url else None,
        tokenizer=tokenizer,
    )
    bf16_ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    args = GRPOConfig(
        **grpo_kwargs(plan, run_dir, bf16_supported=bf16_ok, reward_weights=glue.reward_weights())
    )
    eval_rows = None
    if t.eval_steps:
        eval_rows = glue.eval_dataset()
        if eval_rows is None:
            raise TrainerRefusal(
                f"trainer.eval_steps: environment {env_cfg.id!r} has no eval split; "
                "unset trainer.eval_steps"
            )

    zero = plan.trainer.zero_stage
    phases.start(
        "trainer", "setting up the trainer" + (f" (DeepSpeed ZeRO-{zero})..." if zero else "...")
    )
    if zero is not None:  # DeepSpeed starts with the trainer's accelerator
        prepare_deepspeed(plan)
    trainer_cls = grpo_trainer_class(plan, run_dir)
    trainer = trainer_cls(
        model=model,
        reward_funcs=glue.reward_funcs(),
        args=args,
        train_dataset=Dataset.from_list(glue.train_dataset()),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows is not None else None,
        processing_class=tokenizer,
        callbacks=[
            Metrics(run_dir, names=glue.metric_names(), tensorboard=plan.trainer.tensorboard),
            SaveAtEndCallback(),
            CheckpointMarker(),  # before Saved: its line follows the complete checkpoint
            Saved(),
            BudgetStop(run_dir),
        ],
        rollout_func=glue.rollout_func if rollout else None,
    )
    trainer.remove_callback(PrinterCallback)  # our progress line replaces the raw dict dump
    resume = resolve_resume(t.resume_from_checkpoint, run_dir)
    main = trainer.accelerator.is_main_process
    if main:
        phases.ready()
        where = (
            "in-process"
            if not args.use_vllm
            else "with vLLM colocated in the trainer"
            if args.vllm_mode == "colocate"
            else f"on {args.vllm_server_base_url}"
        )
        how = "the environment's own loop" if rollout else "scored by the environment"
        rewards = ", ".join(f"{k} x{w:g}" for k, w in glue.weights.items())
        say(
            f"{plan.name}: {plan.trainer.model} on {env_cfg.id} "
            f"({adapter.api} API, {len(glue.train_dataset())} prompts, rewards {rewards}), "
            f"{args.max_steps} steps, generation {where} ({how})"
        )
        if resume is not None:
            say(f"resuming from {resume} (step {checkpoint_step(resume)})")
        elif t.resume_from_checkpoint == "latest":
            say("no earlier checkpoint of this run; starting at step 0")
    try:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    finally:
        with contextlib.suppress(Exception):  # tool servers and proxies; the run is over
            glue.close()
    last = Path(str(args.output_dir)) / f"checkpoint-{trainer.state.global_step}"
    if main:
        say(f"done at step {trainer.state.global_step}; checkpoint {last}")
    return last


def _die(line: str, code: int) -> None:
    """Print `line` last on stderr and leave at once: no atexit handler (environments
    register teardowns) or lingering thread may print after it."""
    sys.stdout.flush()
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None, started: float | None = None) -> int:
    started = time.monotonic() if started is None else started
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
        train(plan, run_dir, started)
    except FileNotFoundError as exc:  # e.g. resume_from_checkpoint names no checkpoint
        print(f"vft.train: error: {exc}", file=sys.stderr)
        return 2
    except TrainerRefusal as exc:
        _die(f"vft.train: error: {exc}", 2)
    except BaseException as exc:
        from vft.train.envs import InferenceServerError, find_environment_error
        from vft.train.envs.base import find_in_chain

        err = find_environment_error(exc)
        if err is not None:
            import traceback

            traceback.print_exception(exc)
            _die(f"vft.train: error: {err.line()}", 1)
        server = find_in_chain(exc, InferenceServerError)
        if server is not None:
            _die(f"vft.train: error: inference server: {server}", 1)
        from vft.train.weight_files import WeightSyncError

        sync = find_in_chain(exc, WeightSyncError)
        if sync is not None:  # every rank raises the same line: none hangs
            _die(f"vft.train: error: {sync}", 1)
        raise
    return 0
