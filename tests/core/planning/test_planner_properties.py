"""Property tests: for any valid recipe the plan's topology is sound; any refusal is one line."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.planning import UNLIMITED, make_plan
from vft.core.errors import UserError

GPU_TYPES = ["T4", "L4", "A10G", "L40S", "A100-40GB", "A100-80GB", "H100", "H200", "B200"]


@st.composite
def recipes(draw):
    per_node = draw(st.integers(1, 16))
    nodes = draw(st.integers(1, 6))
    resources = {
        "gpus": f"{draw(st.sampled_from(GPU_TYPES))}:{per_node}",
        "nodes": nodes,
        "tensor_parallel": draw(st.sampled_from([1, 1, 2, 4, 8])),
    }
    if draw(st.booleans()):
        resources["inference_gpus"] = draw(st.integers(1, per_node * nodes + 1))
    trainer = {
        "per_device_train_batch_size": draw(st.integers(1, 16)),
        "num_generations": draw(st.integers(2, 16)),
        "gradient_accumulation_steps": draw(st.integers(1, 8)),
        "deepspeed": draw(st.sampled_from(["zero2", "zero3"])),
    }
    model = {"name": draw(st.sampled_from(["m/Qwen3-0.6B", "m/Qwen3-4B", "m/Llama-8B", "local"]))}
    return {"resources": resources, "trainer": trainer, "model": model}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recipes())
def test_plan_topology_is_sound_or_refused_in_one_line(sections):
    try:
        plan = make_plan(UNLIMITED, **sections)
    except UserError as exc:
        line = exc.line()
        assert line and "\n" not in line
        assert ":" in line  # names the key it is about
        return
    used: dict[int, list[int]] = defaultdict(list)
    for proc in plan.processes:
        assert 0 <= proc.node < plan.nodes
        for d in proc.devices:
            assert 0 <= d < plan.gpus_per_node
        used[proc.node].extend(proc.devices)
    for node, devices in used.items():
        assert len(devices) == len(set(devices)), f"devices overlap on node {node}"
    inference = plan.inference
    n_inference = sum(len(p.devices) for p in plan.processes if p.role == "inference")
    assert inference.data_parallel * inference.tensor_parallel == n_inference
    n_trainer = sum(len(p.devices) for p in plan.processes if p.role == "trainer")
    assert plan.trainer.num_processes == n_trainer
    total = plan.gpus_per_node * plan.nodes
    if inference.colocated:  # one GPU in all: vLLM inside the trainer
        assert total == 1 and n_trainer == 1 and n_inference == 0 and inference.port is None
    else:
        assert n_trainer >= 1 and n_inference >= 1
        assert n_inference + n_trainer <= total
        heads = [p for p in plan.processes if p.role == "inference" and p.ready_url]
        assert len(heads) == 1
    t = sections["trainer"]
    batch = t["per_device_train_batch_size"] * n_trainer * t["gradient_accumulation_steps"]
    assert batch % t["num_generations"] == 0
