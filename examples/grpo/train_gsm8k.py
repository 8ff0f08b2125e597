"""GRPO on GSM8K with a script of your own: the `trainer.script` path of a recipe.

vft runs this file exactly like its built-in trainer, under `accelerate launch` with the
plan's DeepSpeed config, and tells it where everything is through environment variables:

    VFT_RUN_DIR            the attempt folder: write checkpoints and outputs under it
    VFT_PLAN               VFT_RUN_DIR/plan.json (the whole plan; the recipe is plan["recipe"])
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
import json
import os
from pathlib import Path

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from vft.train import environment
from vft.train.main import dataset_rows, make_reward, model_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=None, help="override trainer.max_steps")
    parser.add_argument("--num-examples", type=int, default=None, help="use the first N problems")
    args = parser.parse_args()

    run_dir = Path(os.environ["VFT_RUN_DIR"])
    plan = json.loads(Path(os.environ["VFT_PLAN"]).read_text())
    trainer_cfg = plan["recipe"]["trainer"]
    env_args = dict(plan["recipe"]["environment"]["args"])
    if args.num_examples:
        env_args["num_examples"] = args.num_examples

    # the environment: tasks become prompts, its own reward functions score completions
    gsm8k = environment.load(os.environ["VFT_ENV_ID"], env_args)
    dataset = Dataset.from_list(dataset_rows(gsm8k))

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
        learning_rate=trainer_cfg["learning_rate"],
        per_device_train_batch_size=trainer_cfg["per_device_train_batch_size"],
        gradient_accumulation_steps=trainer_cfg["gradient_accumulation_steps"],
        num_generations=trainer_cfg["num_generations"],
        max_completion_length=trainer_cfg["max_tokens"],
        max_steps=args.max_steps or trainer_cfg["max_steps"],
        save_steps=trainer_cfg["save_steps"],
        logging_steps=1,
        use_cpu=plan["gpu_type"] is None,
        bf16=plan["gpu_type"] is not None,
        use_vllm=server is not None or colocate,  # neither on a CPU plan: in-process
        **(vllm if server is not None or colocate else {}),
        remove_unused_columns=False,  # the reward needs the task index column
        report_to=[],
    )
    trainer = GRPOTrainer(
        model=model_path(os.environ["VFT_MODEL"], run_dir),  # "vft-tiny" is built offline
        reward_funcs=[make_reward(gsm8k)],
        args=config,
        train_dataset=dataset,
    )
    trainer.train()
    trainer.save_model(str(run_dir / "final-model"))


if __name__ == "__main__":
    main()
