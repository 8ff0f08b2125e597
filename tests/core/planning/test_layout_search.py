"""The split search stays linear in the GPUs: a model that fits nowhere is refused at once."""

from __future__ import annotations

import time

import pytest

from tests.planning import UNLIMITED, make_plan
from vft.core.errors import PlanError
from vft.core.planning.layout import _even, _place, assign, splits, valid_inference_gpus

BIG = {
    "model": {"name": "meta/Big-400B"},
    "trainer": {"per_device_train_batch_size": 8, "num_generations": 8},
}


def _accepted(per_node: int, nodes: int, inference: int, tp: int) -> bool:
    try:
        assign(per_node, nodes, inference, tp)
    except PlanError:
        return False
    return True


@pytest.mark.parametrize("per_node", [1, 2, 3, 4, 6, 8])
@pytest.mark.parametrize("nodes", [1, 2, 3, 5])
def test_splits_agrees_with_assign(per_node: int, nodes: int) -> None:
    """The arithmetic answer is the one a full placement gives, for every share and tp."""
    for tp in range(1, per_node + 2):
        for inference in range(0, per_node * nodes + 2):
            assert splits(per_node, nodes, inference, tp) == _accepted(
                per_node, nodes, inference, tp
            ), (per_node, nodes, inference, tp)


@pytest.mark.parametrize(("per_node", "nodes", "tp"), [(8, 3, 2), (8, 5, 4), (6, 4, 4), (4, 7, 1)])
def test_valid_shares_match_a_full_placement(per_node: int, nodes: int, tp: int) -> None:
    brute = [
        i
        for i in range(tp, per_node * nodes, tp)
        if _fits_nodes(per_node, nodes, i, tp) and _even(_place(per_node, nodes, i, tp))
    ]
    assert valid_inference_gpus(per_node, nodes, tp) == brute


def _fits_nodes(per_node: int, nodes: int, inference: int, tp: int) -> bool:
    try:
        _place(per_node, nodes, inference, tp)
    except PlanError:
        return False
    return True


def test_trainer_devices_are_the_gpus_inference_leaves() -> None:
    layout = assign(8, 2, 12, 4)
    assert [(s.inference, s.trainer) for s in layout.slots] == [
        ((0, 1, 2, 3, 4, 5, 6, 7), ()),
        ((0, 1, 2, 3), (4, 5, 6, 7)),
    ]


def test_400b_on_64_nodes_is_refused_fast() -> None:
    """512 GPUs and no split that fits: once minutes of placements, now a few ms."""
    start = time.perf_counter()
    with pytest.raises(PlanError, match="tensor_parallel|needs about"):
        make_plan(UNLIMITED, resources={"gpus": "H100:8", "nodes": 64}, **BIG)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("nodes", [8, 16])
def test_400b_refusal_names_the_trainer_need(nodes: int) -> None:
    with pytest.raises(PlanError, match=r"needs about \d+ GiB per trainer GPU with ZeRO-3"):
        make_plan(UNLIMITED, resources={"gpus": "H100:8", "nodes": nodes}, **BIG)


def test_the_widened_split_is_the_first_that_fits() -> None:
    """A 70B model on 4 x 8 H100: the default split leaves the trainer too little, and the
    search moves GPUs one replica at a time until it fits (the same answer as before)."""
    plan = make_plan(
        UNLIMITED,
        resources={"gpus": "H100:8", "nodes": 4, "tensor_parallel": 4},
        model={"name": "meta/Big-70B"},
        trainer={"per_device_train_batch_size": 1, "num_generations": 8},
    )
    moved = [w for w in plan.warnings if w.startswith("moved")]
    assert moved, plan.warnings
    assert plan.inference.data_parallel * 4 + plan.trainer.num_processes == 32
