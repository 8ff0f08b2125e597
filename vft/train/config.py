"""The plan's trainer section -> TRL `GRPOConfig` keyword arguments.

Pure data in, data out (no torch import), so it is tested without a trainer. The
generation side follows the plan: a GPU plan generates on the plan's vLLM server
(`vllm_mode="server"`, weights synced every step), a colocated one with a vLLM engine
inside each trainer process (`vllm_mode="colocate"`, sharing its GPU); a CPU plan
generates in-process with the model it trains.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vft.core.plan import Plan
from vft.train.checkpoints import checkpoints_dir


def wandb_enabled(plan: Plan, environ: Mapping[str, str]) -> bool:
    """W&B only when the plan names a project and a key is available."""
    return plan.trainer.wandb is not None and bool(environ.get("WANDB_API_KEY"))


def colocated(plan: Plan) -> bool:
    """Whether the plan runs vLLM inside the trainer processes rather than as a server."""
    return plan.inference.colocated


def server_url(plan: Plan, environ: Mapping[str, str]) -> str | None:
    """The inference server's base URL: the plan's env for this trainer, else the plan."""
    if environ.get("VFT_INFERENCE_URL"):
        return environ["VFT_INFERENCE_URL"]
    inference = plan.inference
    if not inference.engine or not inference.port:
        return None
    host = environ.get("VFT_INFERENCE_HOST", "127.0.0.1")
    return f"http://{host}:{inference.port}"


def grpo_kwargs(
    plan: Plan,
    run_dir: str | Path,
    environ: Mapping[str, str] | None = None,
    *,
    bf16_supported: bool = False,
    reward_weights: list[float] | None = None,
) -> dict[str, Any]:
    """GRPOConfig(**kwargs) for this plan; `bf16_supported` says what the device can do,
    `reward_weights` the weight of each reward function (the environment's, in order)."""
    environ = os.environ if environ is None else environ
    t = plan.trainer.training
    cpu = plan.is_cpu
    bf16 = t.bf16
    if bf16 is None:
        bf16 = (not cpu) and bf16_supported
    kwargs: dict[str, Any] = {
        "output_dir": str(checkpoints_dir(run_dir)),
        "learning_rate": t.learning_rate,
        "per_device_train_batch_size": t.per_device_train_batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "num_generations": t.num_generations,
        "max_steps": t.max_steps,
        "max_completion_length": t.max_tokens,
        "temperature": t.temperature,
        "beta": t.beta,
        "seed": t.seed,
        "logging_steps": t.logging_steps,
        "lr_scheduler_type": t.lr_scheduler,
        "save_strategy": "steps",
        "save_steps": t.save_steps,
        "bf16": bool(bf16),
        "use_cpu": cpu,
        "report_to": ["wandb"] if wandb_enabled(plan, environ) else [],
        "run_name": plan.name,
        "disable_tqdm": True,  # vft prints one progress line per step instead
        "log_completions": False,
        "remove_unused_columns": False,  # the row key column reaches the reward functions
    }
    if reward_weights is not None:
        kwargs["reward_weights"] = [float(w) for w in reward_weights]
    if t.eval_steps:
        kwargs |= {
            "eval_strategy": "steps",
            "eval_steps": t.eval_steps,
            # TRL groups eval generations like training ones: the same divisibility holds
            "per_device_eval_batch_size": t.per_device_train_batch_size,
        }
    url = server_url(plan, environ)
    inference = plan.inference
    if colocated(plan) and not cpu:
        kwargs |= {
            "use_vllm": True,
            "vllm_mode": "colocate",
            "vllm_gpu_memory_utilization": float(inference.gpu_memory_utilization or 0.3),
            "vllm_tensor_parallel_size": inference.tensor_parallel or 1,
        }
        if inference.max_model_len:
            kwargs["vllm_max_model_length"] = inference.max_model_len
    elif url is not None and inference.served:
        kwargs |= {
            "use_vllm": True,
            "vllm_mode": "server",
            "vllm_server_base_url": url,
            "vllm_server_timeout": plan.run.ready_timeout_s,
        }
        port = environ.get("VFT_WEIGHT_SYNC_PORT") or inference.weight_sync_port
        if port:
            kwargs["vllm_group_port"] = int(port)
    else:
        kwargs["use_vllm"] = False
    return kwargs
