"""Who prices a run's machines, what a budget cap allows, and the caps `vft plan` refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.planning import SINGLE_NODE, UNLIMITED, make_plan
from vft.core.errors import PlanError
from vft.core.plan import Cost, Plan
from vft.core.planning.budget import budget_rows
from vft.testing import run_vft

ROOT = Path(__file__).resolve().parents[3]
CPU = {"gpus": "cpu"}
CPU_MODEL = {"name": "tiny", "params_b": 0.001}
CPU_TRAINER = {"per_device_train_batch_size": 4, "num_generations": 4}


def local(**resources):
    return make_plan(SINGLE_NODE, "local", resources=resources)


def cpu_local(trainer=None, **resources):
    return make_plan(
        SINGLE_NODE,
        "local",
        model=CPU_MODEL,
        resources={**CPU, **resources},
        trainer={**CPU_TRAINER, **(trainer or {})},
    )


def test_own_hardware_has_no_price_unless_the_recipe_sets_one():
    plan = local(gpus="H100:8")  # the catalog lists H100s at $3.95/h each: not what yours cost
    assert plan.cost == Cost(0.0, source="none") and not plan.cost.known
    priced = local(gpus="H100:8", usd_per_hour=12.5, step_seconds=36)
    assert priced.cost == Cost(12.5, hours=2.0, usd_per_run=25.0, source="recipe")
    assert make_plan(UNLIMITED, "slurm", resources={"usd_per_hour": 3}).cost.source == "recipe"
    # how long it takes is still known; what it costs is not
    assert local(gpus="H100:8", step_seconds=36).cost == Cost(0.0, hours=2.0, source="none")


def test_a_renting_backend_prices_its_gpus_from_the_catalog():
    plan = make_plan(UNLIMITED, "modal", resources={"gpus": "H100:8", "usd_per_hour": 1})
    assert plan.cost == Cost(31.6, source="catalog")
    assert any("resources.usd_per_hour = 1 is ignored" in w for w in plan.warnings)


def test_the_budget_is_carried_in_the_plan_and_round_trips():
    plan = cpu_local(usd_per_hour=2, max_usd=5, max_hours=3)
    assert (plan.run.max_usd, plan.run.max_hours) == (5, 3)
    data = json.loads(plan.to_json())
    assert data["run"]["max_usd"] == 5 and data["cost"]["source"] == "recipe"
    assert Plan.from_dict(data) == plan


def test_a_plan_written_before_budgets_still_loads():
    data = json.loads((ROOT / "tests/fixtures/plans/gsm8k-modal.json").read_text())
    for key in ("max_usd", "max_hours"):
        data["run"].pop(key, None)
    data["cost"].pop("source", None)
    data["run"]["workdir"] = "."
    plan = Plan.from_dict(data)
    assert plan.run.max_usd is None and plan.run.max_hours is None
    assert plan.cost.source == "catalog" and plan.cost.known


def test_a_money_cap_without_a_price_is_refused():
    with pytest.raises(PlanError) as err:
        cpu_local(max_usd=5)
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith("resources.max_usd = 5 needs a price")
    assert "set resources.usd_per_hour" in line and "resources.max_hours" in line


def test_a_money_cap_at_zero_dollars_an_hour_is_refused():
    with pytest.raises(PlanError, match=r"can never be reached at \$0.00/h"):
        cpu_local(usd_per_hour=0, max_usd=5)
    # a CPU plan on a renting backend: the catalog prices GPUs only
    with pytest.raises(PlanError, match="the catalog prices GPUs only"):
        make_plan(
            UNLIMITED,
            "modal",
            model=CPU_MODEL,
            resources={**CPU, "max_usd": 5},
            trainer=CPU_TRAINER,
        )


def test_a_time_cap_needs_no_price():
    plan = cpu_local(max_hours=2)
    assert plan.run.max_hours == 2 and not plan.cost.known
    assert any("budget: 2 h stops the run after ~2.0 h" in w for w in plan.warnings)


def test_the_plan_says_how_many_steps_the_cap_allows():
    plan = cpu_local(
        trainer={"max_steps": 200}, usd_per_hour=3.6, max_usd=0.3, step_seconds=2.5
    )  # $0.30 at $3.60/h: 300 s, 120 steps of 2.5 s
    line = (
        "budget: $0.30 at $3.60/h allows ~120 of 200 steps at ~2.5 s/step; "
        "the run stops at the cap with a checkpoint"
    )
    assert line in plan.warnings
    assert budget_rows(plan) == [
        (
            "budget",
            "$0.30 at $3.60/h: stops after ~5 min, a checkpoint first; "
            "~120 of 200 steps at ~2.5 s/step",
        ),
    ]


def test_the_first_cap_reached_decides_and_a_roomy_cap_is_no_warning():
    plan = cpu_local(
        trainer={"max_steps": 100}, usd_per_hour=3.6, max_usd=100, max_hours=0.1, step_seconds=2
    )  # $100 would last 27.8 h; 0.1 h is 360 s: 180 steps, more than the 100 asked
    assert not any(w.startswith("budget:") for w in plan.warnings)
    assert budget_rows(plan)[0] == (
        "budget",
        "0.1 h: stops after ~6 min, a checkpoint first; enough for all 100 steps at ~2 s/step",
    )


def test_no_cap_no_row():
    assert budget_rows(cpu_local()) == []


def test_vft_plan_refuses_a_money_cap_without_a_price_in_one_line():
    out = run_vft(
        "plan",
        str(ROOT / "examples/recipes/smoke.toml"),
        "--set",
        "resources.max_usd=5",
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "vft: error: resources.max_usd = 5 needs a price, and backend 'local' runs on your own "
        "machines, which have none: set resources.usd_per_hour (what they cost per hour, all "
        "nodes together), or cap the time with resources.max_hours"
    ]
    assert "Traceback" not in out.stdout + out.stderr


def test_a_backend_that_bills_the_host_has_it_in_the_plans_price_and_budget():
    """Modal bills container cores and memory beside the GPUs: the plan's one price (and so
    the budget clock, which runs at `cost.usd_per_hour`) includes them."""
    from vft.backends.modal.backend import ModalBackend
    from vft.backends.modal.pricing import container_size, container_usd_per_hour

    caps = ModalBackend.capabilities
    plan = make_plan(caps, "modal", resources={"gpus": "A100-80GB:2", "step_seconds": 36})
    host = container_usd_per_hour(*container_size(2, False, {}), nodes=1)
    assert plan.cost.host_usd_per_hour == round(host, 2) > 0
    assert plan.cost.usd_per_hour == round(2 * 2.5 + round(host, 2), 2)
    assert plan.cost.usd_per_run == round(plan.cost.usd_per_hour * plan.cost.hours, 2)
    # two nodes: twice the containers; a bigger container (the recipe's) costs more
    two = make_plan(caps, "modal", resources={"gpus": "H100:8", "nodes": 2})
    per_node = container_usd_per_hour(*container_size(8, False, {}), nodes=1)
    assert two.cost.host_usd_per_hour == round(2 * per_node, 2) > round(per_node, 2)
    big = _plan_with_options(caps, {"cpu": 32.0}, gpus="A100-80GB:2")
    assert big.cost.host_usd_per_hour == round(container_usd_per_hour(32.0, 64, 1), 2)
    # a CPU container has a price too, so a money cap on it is enforceable
    capped = make_plan(
        caps, "modal", model=CPU_MODEL, resources={**CPU, "max_usd": 5}, trainer=CPU_TRAINER
    )
    assert capped.cost.usd_per_hour == capped.cost.host_usd_per_hour > 0
    assert capped.run.max_usd == 5
    # a backend that bills nothing beside the GPUs: host 0, the GPUs' price alone
    assert make_plan(UNLIMITED, "test", resources={"gpus": "A100-80GB:2"}).cost == Cost(
        5.0, source="catalog"
    )


def _plan_with_options(caps, options, **resources):
    """A plan whose backend options are validated already, as `vft plan` passes them."""
    from tests.planning import recipe_dict
    from vft.core.engines.vllm import VllmServer
    from vft.core.planning.planner import Target, plan
    from vft.core.recipe import recipe_from_dict
    from vft.core.resources import accelerate_templates

    target = Target(
        backend="modal",
        capabilities=caps,
        server=VllmServer(),
        templates=accelerate_templates(),
        backend_options=options,
    )
    return plan(recipe_from_dict(recipe_dict(resources=resources)), target)


def test_a_host_price_that_is_not_a_number_of_dollars_is_refused():
    """A plugin's broken host price (NaN, negative) would switch the money cap off."""
    from dataclasses import replace

    from vft.backends.modal.backend import ModalBackend

    for bad in (float("nan"), -1.0, float("inf")):
        caps = replace(ModalBackend.capabilities, host_usd_per_hour=lambda host, bad=bad: bad)
        with pytest.raises(PlanError, match="host price is .* not a finite number"):
            make_plan(caps, "modal", resources={"gpus": "A100-80GB:2"})
