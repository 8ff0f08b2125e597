"""Single-GPU plans: vLLM colocated in the trainer process (TRL's `vllm_mode="colocate"`).

Planning and the trainer's config are pure, so they are tested here without a GPU; the run
itself is tests/gpu/test_gpu_train.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.planning import make_plan
from vft.core.errors import PlanError, UserError
from vft.core.node.ready import ready_urls
from vft.core.plan import NodeContext, Plan
from vft.train.config import grpo_kwargs

SMALL_BATCH = {"per_device_train_batch_size": 8, "num_generations": 8}


def flag(argv, name):
    return argv[argv.index(name) + 1]


def one_line(exc: pytest.ExceptionInfo) -> str:
    line = exc.value.line()
    assert "\n" not in line
    return line


def test_one_h100_plans_one_trainer_with_vllm_inside():
    plan = make_plan(resources={"gpus": "H100:1"}, trainer=SMALL_BATCH)
    (trainer,) = plan.processes
    assert trainer.role == "trainer" and trainer.devices == (0,)
    assert trainer.env["CUDA_VISIBLE_DEVICES"] == "0"
    assert flag(list(trainer.argv), "--num_processes") == "1"
    assert not any(k.startswith("VFT_INFERENCE") for k in trainer.env)
    assert "VFT_WEIGHT_SYNC_PORT" not in trainer.env
    assert trainer.env["VFT_VLLM_MODE"] == "colocate"
    assert trainer.env["VFT_VLLM_GPU_MEMORY_UTILIZATION"] == "0.3"
    inf = plan.inference
    assert inf.engine == "vllm" and inf.mode == "colocate"
    assert inf.data_parallel == 0 and inf.tensor_parallel == 1 and inf.port is None
    assert inf.gpu_memory_utilization == 0.3
    assert plan.trainer.num_processes == 1
    # vLLM's 0.3 of 80 GiB is part of the trainer process's memory
    mem = plan.memory
    assert mem["fits"] is True and mem["colocated_vllm_gib_per_gpu"] == 24.0
    assert mem["trainer_breakdown_gib"]["vllm"] == 24.0
    assert mem["trainer_gib_per_gpu"] > 24.0
    assert mem["trainer_gib_per_gpu"] <= 80 * 0.95
    assert mem["inference_kv_cache_gib_per_gpu"] > 0
    # single node: nothing to wait for, the trainer starts at once even "after_ready"
    assert (
        ready_urls(plan, plan.processes, NodeContext(0, ("127.0.0.1",), "/r"), "after_ready") == []
    )


def test_a10g_fits_a_small_model_colocated():
    plan = make_plan(resources={"gpus": "A10G:1"}, trainer=SMALL_BATCH)
    mem = plan.memory
    assert plan.inference.mode == "colocate"
    assert mem["colocated_vllm_gib_per_gpu"] == pytest.approx(7.2)
    assert 7.2 < mem["trainer_gib_per_gpu"] <= 24 * 0.95
    assert mem["inference_weights_gib_per_gpu"] == pytest.approx(1.1)
    assert mem["inference_kv_cache_gib_per_gpu"] > 4


def test_a_model_that_does_not_fit_colocated_is_refused_in_one_line():
    with pytest.raises(PlanError) as exc:
        make_plan(
            model={"name": "Qwen/Qwen3-4B"}, resources={"gpus": "A10G:1"}, trainer=SMALL_BATCH
        )
    line = one_line(exc)
    assert line.startswith("model.name: Qwen/Qwen3-4B (4B) does not fit with vLLM colocated")
    assert "24 GiB of a A10G" in line


def eight_b_on_one_h100(util: float) -> Plan:
    return make_plan(
        model={"name": "Qwen/Qwen3-8B"},
        resources={"gpus": "H100:1"},
        inference={"gpu_memory_utilization": util},
        trainer=SMALL_BATCH,
    )


def test_an_unfitting_utilization_names_the_range_that_fits():
    ranges = set()
    for util, why in ((0.9, "leaves the trainer"), (0.1, "leaves no room for a KV cache")):
        with pytest.raises(PlanError) as exc:
            eight_b_on_one_h100(util)
        line = one_line(exc)
        assert line.startswith(f"inference.gpu_memory_utilization: {util:g} of a 80 GiB H100")
        assert why in line
        ranges.add(tuple(float(x) for x in line.split("choose between ")[1].split(" and ")))
    ((low, high),) = ranges
    # both ends of the range plan (offloading the optimizer to make room); beyond, refused
    for util in (low, high):
        plan = eight_b_on_one_h100(util)
        assert plan.trainer.offload_optimizer is True
        assert any("offload" in w for w in plan.warnings)
    for util in (low - 0.02, high + 0.02):
        with pytest.raises(PlanError):
            eight_b_on_one_h100(util)


def test_a_set_utilization_is_kept():
    plan = make_plan(
        resources={"gpus": "H100:1"}, inference={"gpu_memory_utilization": 0.5}, trainer=SMALL_BATCH
    )
    assert plan.inference.gpu_memory_utilization == 0.5
    assert plan.memory["colocated_vllm_gib_per_gpu"] == 40.0
    assert plan.processes[0].env["VFT_VLLM_GPU_MEMORY_UTILIZATION"] == "0.5"


def test_explicit_colocate_on_eight_gpus_is_one_trainer_of_eight_processes():
    plan = make_plan(resources={"gpus": "H100:8"}, inference={"colocate": True})
    (trainer,) = plan.processes
    assert trainer.devices == tuple(range(8))
    assert flag(list(trainer.argv), "--num_processes") == "8"
    assert plan.trainer.num_processes == 8
    assert plan.inference.mode == "colocate" and plan.inference.engines == 8
    tp2 = make_plan(
        resources={"gpus": "H100:8", "tensor_parallel": 2}, inference={"colocate": True}
    )
    assert tp2.inference.tensor_parallel == 2 and tp2.inference.engines == 4
    with pytest.raises(PlanError) as exc:
        make_plan(resources={"gpus": "H100:8", "tensor_parallel": 3}, inference={"colocate": True})
    assert one_line(exc).startswith("resources.tensor_parallel: 3 does not divide the 8 GPU(s)")


def test_explicit_colocate_on_two_nodes_trains_on_both():
    plan = make_plan(resources={"gpus": "H100:8", "nodes": 2}, inference={"colocate": True})
    assert [(p.role, p.node) for p in plan.processes] == [("trainer", 0), ("trainer", 1)]
    for rank, p in enumerate(plan.processes):
        assert flag(list(p.argv), "--num_processes") == "16"
        assert flag(list(p.argv), "--machine_rank") == str(rank)
    assert plan.trainer.nodes == (0, 1)
    # no node serves, so no trainer node waits for a server, even "after_ready"
    ctx = NodeContext(1, ("10.0.0.1", "10.0.0.2"), "/r")
    assert ready_urls(plan, plan.processes_on(1), ctx, "after_ready") == []


def test_colocate_false_on_one_gpu_is_the_old_refusal():
    with pytest.raises(PlanError) as exc:
        make_plan(resources={"gpus": "H100:1"}, inference={"colocate": False}, trainer=SMALL_BATCH)
    assert one_line(exc).startswith("resources.inference_gpus: 0 leaves no GPU for inference")


def test_two_gpus_still_plan_a_server_unless_asked():
    plan = make_plan(resources={"gpus": "H100:2"}, trainer=SMALL_BATCH)
    assert [p.role for p in plan.processes] == ["inference", "trainer"]
    assert plan.inference.mode == "server" and plan.inference.port == 8000
    assert "colocated_vllm_gib_per_gpu" not in plan.memory


@pytest.mark.parametrize(
    ("sections", "start"),
    [
        ({"resources": {"gpus": "cpu"}}, "inference.colocate: true needs GPUs"),
        (
            {"resources": {"gpus": "H100:4", "inference_gpus": 2}},
            "resources.inference_gpus: 2 asks for a vLLM server",
        ),
        (
            {"resources": {"gpus": "H100:1"}, "inference": {"engine": "sglang"}},
            "inference.colocate: true runs vLLM inside the trainer",
        ),
    ],
)
def test_contradictions_are_refused_in_one_line(sections, start):
    inference = {"colocate": True, **sections.pop("inference", {})}
    with pytest.raises(UserError) as exc:
        make_plan(inference=inference, trainer=SMALL_BATCH, **sections)
    assert one_line(exc).startswith(start)


def test_plan_json_round_trip():
    plan = make_plan(resources={"gpus": "H100:1"}, trainer=SMALL_BATCH)
    again = Plan.from_json(plan.to_json())
    assert again == plan
    assert again.inference.mode == "colocate" and again.inference.port is None


def test_trainer_config_for_a_colocated_plan(tmp_path):
    plan = make_plan(
        resources={"gpus": "H100:1"},
        inference={"max_model_len": 4096},
        trainer={**SMALL_BATCH, "max_tokens": 512},
    )
    kw = grpo_kwargs(plan, tmp_path, {}, bf16_supported=True)
    assert kw["use_vllm"] is True and kw["vllm_mode"] == "colocate"
    assert kw["vllm_gpu_memory_utilization"] == 0.3
    assert kw["vllm_tensor_parallel_size"] == 1
    assert kw["vllm_max_model_length"] == 4096
    assert "vllm_server_base_url" not in kw and "vllm_group_port" not in kw
    assert kw["bf16"] is True and kw["use_cpu"] is False
    # TRL accepts every name (a misspelt keyword would raise here)
    from trl import GRPOConfig

    args = GRPOConfig(**{**kw, "bf16": False})
    assert args.vllm_mode == "colocate" and args.vllm_gpu_memory_utilization == 0.3


def test_trainer_config_for_server_and_cpu_plans_is_unchanged(tmp_path):
    server = make_plan(resources={"gpus": "H100:2"}, trainer=SMALL_BATCH)
    kw = grpo_kwargs(server, tmp_path, {"VFT_INFERENCE_URL": "http://10.0.0.1:8000"})
    assert kw["vllm_mode"] == "server" and kw["vllm_server_base_url"] == "http://10.0.0.1:8000"
    assert "vllm_gpu_memory_utilization" not in kw
    cpu = make_plan(
        model={"name": "tiny", "params_b": 0.001},
        resources={"gpus": "cpu"},
        trainer={**SMALL_BATCH, "gradient_accumulation_steps": 1},
    )
    kw = grpo_kwargs(cpu, tmp_path, {})
    assert kw["use_vllm"] is False and kw["use_cpu"] is True


def test_vft_plan_says_generation_is_colocated(tmp_path):
    recipe = tmp_path / "one.toml"
    recipe.write_text(
        textwrap.dedent(
            """
            name = "one"
            [model]
            name = "willcb/Qwen3-0.6B"
            [environment]
            id = "vft_smoke"
            [resources]
            gpus = "H100:1"
            [trainer]
            per_device_train_batch_size = 8
            num_generations = 8
            """
        )
    )
    out = subprocess.run(
        [sys.executable, "-m", "vft", "plan", str(recipe)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert out.returncode == 0, out.stderr
    assert "H100:1 x 1 node(s), generation: vLLM colocated in the trainer, trainer 1" in out.stdout
    assert "colocated vLLM ~24.0 GiB (gpu_memory_utilization 0.3" in out.stdout
    assert "dp=" not in out.stdout
