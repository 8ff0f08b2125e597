"""The planner against the tutorial's hand-written commands and its own checks."""

from __future__ import annotations

import pytest

from tests.planning import MODAL_LIKE, SINGLE_NODE, make_plan
from vft.core.errors import PlanError, UserError
from vft.core.plan import Cost, NodeContext, Plan


def by_role(plan: Plan, role: str):
    return [p for p in plan.processes if p.role == role]


def flag(argv, name):
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize(
    ("gpus", "inference_devices", "trainer_devices"),
    [
        # tutorial: CUDA_VISIBLE_DEVICES=0 vf-vllm ... & CUDA_VISIBLE_DEVICES=1 accelerate launch --num-processes 1
        ("A100-80GB:2", (0,), (1,)),
        # tutorial: 0-5 vf-vllm --data-parallel-size 6 & 6,7 accelerate launch --num-processes 2
        ("H100:8", (0, 1, 2, 3, 4, 5), (6, 7)),
        # tutorial: 0-11 --data-parallel-size 12 & 12-15 --num-processes 4
        ("H100:16", tuple(range(12)), (12, 13, 14, 15)),
    ],
)
def test_default_split_matches_tutorial(gpus, inference_devices, trainer_devices):
    plan = make_plan(resources={"gpus": gpus}, trainer={"per_device_train_batch_size": 12})
    (inference,) = by_role(plan, "inference")
    (trainer,) = by_role(plan, "trainer")
    assert inference.devices == inference_devices
    assert inference.env["CUDA_VISIBLE_DEVICES"] == ",".join(map(str, inference_devices))
    assert trainer.devices == trainer_devices
    assert trainer.env["CUDA_VISIBLE_DEVICES"] == ",".join(map(str, trainer_devices))
    assert flag(list(inference.argv), "--data-parallel-size") == str(len(inference_devices))
    assert flag(list(trainer.argv), "--num_processes") == str(len(trainer_devices))
    assert plan.inference.data_parallel == len(inference_devices)
    assert plan.trainer.num_processes == len(trainer_devices)


def test_vllm_argv_and_readiness():
    plan = make_plan(
        inference={
            "enforce_eager": True,
            "max_model_len": 4096,
            "extra_args": ["--disable-log-requests"],
        }
    )
    (inference,) = by_role(plan, "inference")
    argv = list(inference.argv)
    assert argv[:3] == ["vllm", "serve", "willcb/Qwen3-0.6B"]
    assert "--enforce-eager" in argv and argv[-1] == "--disable-log-requests"
    assert flag(argv, "--max-model-len") == "4096"
    assert flag(argv, "--weight-transfer-config") == '{"backend":"nccl"}'
    assert inference.env["VLLM_SERVER_DEV_MODE"] == "1"
    assert inference.ready_url == "http://127.0.0.1:8000/health"


def test_trainer_runs_builtin_entry_or_script():
    plan = make_plan()
    (trainer,) = by_role(plan, "trainer")
    assert trainer.argv[:2] == ("accelerate", "launch")
    assert trainer.argv[-4:] == ("-m", "vft.train", "--run-dir", "{{run_dir}}")
    assert trainer.env["VFT_INFERENCE_URL"] == "http://127.0.0.1:8000"
    scripted = make_plan(
        trainer={"script": "examples/grpo/train_gsm8k.py", "args": ["--size", "1.7B"]}
    )
    (trainer,) = by_role(scripted, "trainer")
    assert trainer.argv[-3:] == ("examples/grpo/train_gsm8k.py", "--size", "1.7B")


def test_tensor_parallel_split_and_errors():
    plan = make_plan(resources={"gpus": "H100:8", "tensor_parallel": 2})
    assert plan.inference.data_parallel * plan.inference.tensor_parallel == 6
    with pytest.raises(PlanError, match="does not divide"):
        make_plan(resources={"gpus": "H100:8", "tensor_parallel": 2, "inference_gpus": 5})
    with pytest.raises(PlanError, match="fit on one node"):
        make_plan(resources={"gpus": "H100:8", "tensor_parallel": 16})


def test_allocation_mismatch_is_caught_before_launch():
    """The tutorial's 'GPU allocation mismatch': more GPUs used than requested."""
    with pytest.raises(PlanError, match="leaves no GPU for the trainer"):
        make_plan(resources={"gpus": "H100:4", "inference_gpus": 6})


def test_modal_limit_suggests_nodes():
    with pytest.raises(PlanError, match=r"use nodes = 2 with H100:8"):
        make_plan(MODAL_LIKE, backend="modal", resources={"gpus": "H100:16"})


def test_single_node_backend_refuses_multi_node():
    with pytest.raises(PlanError, match="one node only.*one machine"):
        make_plan(SINGLE_NODE, backend="local", resources={"gpus": "H100:8", "nodes": 2})


def test_batch_divisibility():
    with pytest.raises(PlanError, match=r"num_generations: 7 does not divide .* = 96"):
        make_plan(trainer={"num_generations": 7})


def test_model_that_does_not_fit():
    with pytest.raises(PlanError, match=r"needs about \d+ GiB per trainer GPU"):
        make_plan(model={"name": "meta-llama/Llama-3.1-70B"}, resources={"gpus": "T4:2"})


def test_memory_moves_gpus_to_trainer_when_unpinned():
    plan = make_plan(
        model={"name": "Qwen/Qwen3-8B"},
        resources={"gpus": "A100-40GB:8"},
        trainer={
            "per_device_train_batch_size": 2,
            "num_generations": 4,
            "gradient_accumulation_steps": 4,
        },
    )
    assert plan.trainer.num_processes > 2
    assert any("moved" in w for w in plan.warnings)
    assert plan.memory["fits"] is True


def test_unknown_size_warns():
    plan = make_plan(model={"name": "./my-model"})
    assert plan.memory["fits"] is None
    assert any("model.params_b" in w for w in plan.warnings)


def test_cost_per_hour_and_per_run():
    plan = make_plan(resources={"gpus": "H100:8", "step_seconds": 36}, trainer={"max_steps": 200})
    assert plan.cost == Cost(usd_per_hour=31.6, hours=2.0, usd_per_run=63.2)


def test_cpu_plan_has_one_trainer_and_no_server():
    plan = make_plan(
        model={"name": "tiny", "params_b": 0.001},
        resources={"gpus": "cpu"},
        trainer={
            "per_device_train_batch_size": 4,
            "num_generations": 4,
            "gradient_accumulation_steps": 1,
        },
    )
    assert [p.role for p in plan.processes] == ["trainer"]
    assert plan.processes[0].env["CUDA_VISIBLE_DEVICES"] == ""
    assert "use_cpu: true" in plan.files["accelerate.yaml"]
    assert plan.cost.usd_per_hour == 0


def test_zero2_and_rendered_config():
    plan = make_plan(trainer={"deepspeed": "zero2"})
    assert "zero_stage: 2" in plan.files["accelerate.yaml"]
    assert plan.trainer.zero_stage == 2
    assert "zero_stage: 3" in make_plan().files["accelerate.yaml"]


def test_multi_node_plan():
    plan = make_plan(
        resources={"gpus": "H100:8", "nodes": 4}, trainer={"per_device_train_batch_size": 12}
    )
    servers = by_role(plan, "inference")
    trainers = by_role(plan, "trainer")
    assert [s.node for s in servers] == [0, 1, 2]
    assert [t.node for t in trainers] == [3]
    head = servers[0]
    assert flag(list(head.argv), "--data-parallel-size") == "24"
    assert flag(list(head.argv), "--data-parallel-size-local") == "8"
    assert "--headless" not in head.argv and "--headless" in servers[1].argv
    assert flag(list(servers[2].argv), "--data-parallel-start-rank") == "16"
    assert trainers[0].env["VFT_INFERENCE_HOST"] == "{{node_addr:0}}"
    resolved = trainers[0].resolved(NodeContext(3, ("10.0.0.1", "b", "c", "d"), "/runs/x"))
    assert resolved.env["VFT_INFERENCE_URL"] == "http://10.0.0.1:8000"
    assert resolved.argv[resolved.argv.index("--config_file") + 1] == "/runs/x/accelerate.yaml"


def test_multi_node_trainer_ranks():
    plan = make_plan(
        resources={"gpus": "H100:8", "nodes": 4, "inference_gpus": 16},
        trainer={"per_device_train_batch_size": 12},
    )
    trainers = by_role(plan, "trainer")
    assert [t.node for t in trainers] == [2, 3]
    for rank, t in enumerate(trainers):
        argv = list(t.argv)
        assert flag(argv, "--num_machines") == "2"
        assert flag(argv, "--machine_rank") == str(rank)
        assert flag(argv, "--main_process_ip") == "{{node_addr:2}}"
        assert flag(argv, "--num_processes") == "16"


def test_uneven_trainer_nodes_are_refused_with_valid_choices():
    with pytest.raises(PlanError, match=r"same number on every node \(valid inference_gpus: 8"):
        make_plan(resources={"gpus": "H100:8", "nodes": 2, "inference_gpus": 4})


def test_plan_json_round_trip():
    plan = make_plan(resources={"gpus": "H100:8", "nodes": 2})
    again = Plan.from_json(plan.to_json())
    assert again == plan
    data = plan.to_dict()
    for key in (
        "version",
        "name",
        "backend",
        "gpu_type",
        "gpus_per_node",
        "nodes",
        "inference",
        "trainer",
        "processes",
        "files",
        "memory",
        "cost",
        "warnings",
    ):
        assert key in data
    assert data["version"] == 1


def test_newer_plan_version_is_refused():
    data = make_plan().to_dict()
    data["version"] = 99
    with pytest.raises(ValueError, match="version 99"):
        Plan.from_dict(data)


def test_errors_are_one_line():
    for kwargs in (
        {"resources": {"gpus": "A100:2"}},
        {"resources": {"gpus": "H100:4", "inference_gpus": 4}},
        {"trainer": {"num_generations": 5}},
    ):
        with pytest.raises(UserError) as info:
            make_plan(**kwargs)
        assert "\n" not in info.value.line()


def test_node_devices_map_plan_ids_to_the_gpus_a_scheduler_gave():
    plan = make_plan(resources={"gpus": "H100:2"})
    inference, trainer = plan.processes
    ctx = NodeContext(0, ("127.0.0.1",), "/r", devices=("3", "5"))
    assert inference.resolved(ctx).env["CUDA_VISIBLE_DEVICES"] == "3"
    assert trainer.resolved(ctx).env["CUDA_VISIBLE_DEVICES"] == "5"
    assert trainer.resolved(NodeContext(0, ("x",), "/r")).env["CUDA_VISIBLE_DEVICES"] == "1"
    with pytest.raises(ValueError, match="given only 1 GPU"):
        trainer.resolved(NodeContext(0, ("x",), "/r", devices=("7",)))


# Each tutorial command's hand-written split: (recipe, GPU string, inference devices, dp, trainer devices)
TUTORIAL = [
    ("gsm8k", "A100-80GB:2", (0,), 1, (1,)),
    ("wordle-1.7b", "H100:8", (0, 1, 2, 3, 4, 5), 6, (6, 7)),
    ("wordle-4b", "H100:8", (0, 1, 2, 3, 4, 5), 6, (6, 7)),
    ("math-python-1.7b", "H100:8", (0, 1, 2, 3, 4, 5), 6, (6, 7)),
    ("reverse-text", "H100:8", (0, 1, 2, 3, 4, 5), 6, (6, 7)),
]


@pytest.mark.parametrize(("name", "gpus", "inference", "dp", "trainer"), TUTORIAL)
@pytest.mark.parametrize("backend", ["local", "modal"])
def test_example_recipes_plan_like_the_tutorials_commands(
    name, gpus, inference, dp, trainer, backend, plan_for
):
    plan = plan_for(f"examples/recipes/{name}.toml", backend)
    assert f"{plan.gpu_type}:{plan.gpus_per_node}" == gpus and plan.nodes == 1
    (server,) = by_role(plan, "inference")
    (train,) = by_role(plan, "trainer")
    assert server.devices == inference and train.devices == trainer
    assert plan.inference.data_parallel == dp and plan.trainer.num_processes == len(trainer)
    assert plan.memory["fits"] is True


@pytest.mark.parametrize("name", ["smoke", "custom-script"])
def test_cpu_example_recipes_plan(name, plan_for):
    plan = plan_for(f"examples/recipes/{name}.toml", "local")
    assert [p.role for p in plan.processes] == ["trainer"] and plan.is_cpu
