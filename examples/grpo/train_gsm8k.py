"""GRPO on GSM8K with a script of your own: the `trainer.script` path of a recipe.

vft runs this file exactly like its built-in trainer, under `accelerate launch` with the
plan's DeepSpeed config, and tells it where everything is through environment variables:

    VFT_RUN_DIR            the attempt folder: write checkpoints and outputs under it
    VFT_PLAN               VFT_RUN_DIR/plan.json (the whole plan: vft.core.plan.Plan.from_json)
    VFT_MODEL              model.name of the recipe
    VFT_ENV_ID             environment.id of the recipe
    VFT_INFERENCE_URL      the vLLM server (GPU plans only), e.g. http://127.0.0.1:8000
    VFT_INFERENCE_HOST / VFT_INFERENCE_PORT   the same, split
    VFT_WEIGHT_SYNC_PORT   the port of the weight-sync group TRL opens with the server
    VFT_VLLM_MODE          "colocate" on a one-GPU plan: vLLM runs inside this process
    VFT_VLLM_GPU_MEMORY_UTILIZATION   its share of the GPU (colocate only)

Recipe arguments (`trainer.args`) arrive as ordinary command-line arguments.
See examples/recipes/custom-script.toml and docs/training.md.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from vft.core.plan import Plan
from vft.train import envs
from vft.train.envs.trl_glue import TrlGlue
from vft.train.main import model_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=None, help="override trainer.max_steps")
    parser.add_argument("--num-examples", type=int, default=None, help="use the first N problems")
    args = parser.parse_args()

    run_dir = Path(os.environ["VFT_RUN_DIR"])
    plan = Plan.from_json(Path(os.environ["VFT_PLAN"]).read_text())
    t = plan.trainer.training
    env_args = dict(plan.trainer.environment.args)
    if args.num_examples:
        env_args["num_examples"] = args.num_examples

    # the environment: its rows become prompts, its own reward functions score completions
    gsm8k = TrlGlue(envs.load(os.environ["VFT_ENV_ID"], env_args), rollout=False)

    server = os.environ.get("VFT_INFERENCE_URL")  # a vLLM server serves the generations
    colocate = os.environ.get("VFT_VLLM_MODE") == "colocate"  # one GPU: vLLM in this process
    vllm = (
        {
            "vllm_mode": "colocate",
            "vllm_gpu_memory_utilization": float(
                os.environ.get("VFT_VLLM_GPU_MEMORY_UTILIZATION", "0.3")
            ),
        }
        if colocate
        else {
            "vllm_mode": "server",
            "vllm_server_base_url": server,
            "vllm_group_port": int(os.environ.get("VFT_WEIGHT_SYNC_PORT", "51216")),
        }
    )
    config = GRPOConfig(
        output_dir=str(run_dir / "checkpoints"),
        learning_rate=t.learning_rate,
        per_device_train_batch_size=t.per_device_train_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        num_generations=t.num_generations,
        max_completion_length=t.max_tokens,
        max_steps=args.max_steps or t.max_steps,
        save_steps=t.save_steps,
        logging_steps=1,
        use_cpu=plan.is_cpu,
        bf16=not plan.is_cpu,
        use_vllm=server is not None or colocate,  # neither on a CPU plan: in-process
        **(vllm if server is not None or colocate else {}),
        reward_weights=gsm8k.reward_weights(),  # the environment's own weights
        remove_unused_columns=False,  # the reward functions need the row key column
        report_to=[],
    )
    trainer = GRPOTrainer(
        model=model_path(os.environ["VFT_MODEL"], run_dir),  # "vft-tiny" is built offline
        reward_funcs=gsm8k.reward_funcs(),  # one per reward component, logged by name
        args=config,
        train_dataset=Dataset.from_list(gsm8k.train_dataset()),
    )
    trainer.train()
    trainer.save_model(str(run_dir / "final-model"))
    gsm8k.close()


if __name__ == "__main__":
    main()
