"""The run's price and budget: who prices the machines, what a cap allows, `vft plan`'s row.

A backend that rents GPUs (Modal) prices them from the catalog (configs/gpus.toml), plus
what it bills beside them (`Capabilities.host_usd_per_hour`: Modal's container cores and
memory), so the budget clock counts the whole bill. On
own hardware (local, a Slurm cluster) the catalog's list price says nothing about what
the machines cost: they have no price unless the recipe sets `resources.usd_per_hour`
(what all of the run's machines together cost per hour). `resources.max_usd` needs a
price; `resources.max_hours` does not.

The supervisor enforces the cap (vft/core/node/budget.py); here it is only explained:
how long the cap lets the run go and, at `resources.step_seconds`, how many steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vft.core.errors import PlanError
from vft.core.plan import Cost, Plan
from vft.core.planning.estimate import cost, run_cost
from vft.core.recipe.schema import Recipe

#: backends whose machines are the user's own: no list price, resources.usd_per_hour prices
#: them; every other backend rents its GPUs at the catalog's prices
OWN_HARDWARE = frozenset({"local", "slurm"})


def price(
    recipe: Recipe, backend: str, warnings: list[str], host_usd_per_hour: float = 0.0
) -> Cost:
    """The plan's Cost: the catalog's on a renting backend (plus what it bills for the CPU
    and memory beside the GPUs), the recipe's on own hardware."""
    res = recipe.resources
    steps, step_s = recipe.trainer.max_steps, res.step_seconds
    if backend not in OWN_HARDWARE:
        request = res.request
        usd = request.type.usd_per_hour if request.type else 0.0
        if res.usd_per_hour is not None:
            warnings.append(
                f"resources.usd_per_hour = {res.usd_per_hour:g} is ignored: backend "
                f"{backend!r} rents its GPUs at the catalog's prices"
            )
        return cost(usd, request.count * res.nodes, steps, step_s, host_usd_per_hour)
    if res.usd_per_hour is None:
        return run_cost(0.0, steps, step_s, "none")
    return run_cost(round(float(res.usd_per_hour), 4), steps, step_s, "recipe")


def check_budget(recipe: Recipe, backend: str, run_cost_: Cost) -> None:
    """Refuse a money cap that nothing could enforce (no price, or a price of $0/h)."""
    res = recipe.resources
    if res.max_usd is None:
        return
    if not run_cost_.known:
        raise PlanError(
            f"resources.max_usd = {res.max_usd:g} needs a price, and backend {backend!r} runs "
            "on your own machines, which have none: set resources.usd_per_hour (what they "
            "cost per hour, all nodes together), or cap the time with resources.max_hours"
        )
    if run_cost_.usd_per_hour <= 0:
        raise PlanError(
            f"resources.max_usd = {res.max_usd:g} can never be reached at $0.00/h "
            f"({'resources.usd_per_hour' if run_cost_.source == 'recipe' else 'the catalog prices GPUs only'}): "
            "set resources.usd_per_hour above 0, or cap the time with resources.max_hours"
        )


@dataclass(frozen=True)
class Allowance:
    """What a plan's cap allows: seconds of run time and, when the step time is known, steps."""

    seconds: float
    by: str  # "max_usd" or "max_hours": whichever cap comes first
    steps: int | None = None  # steps that fit, at step_seconds
    step_seconds: float | None = None


def budget_seconds(plan: Plan) -> tuple[float, str] | None:
    """(seconds of run time the caps allow, which cap), or None without a cap."""
    caps: list[tuple[float, str]] = []
    if plan.run.max_hours is not None:
        caps.append((plan.run.max_hours * 3600.0, "max_hours"))
    if plan.run.max_usd is not None and plan.cost.known and plan.cost.usd_per_hour > 0:
        caps.append((plan.run.max_usd / plan.cost.usd_per_hour * 3600.0, "max_usd"))
    return min(caps) if caps else None


def allowance(plan: Plan, step_seconds: float | None) -> Allowance | None:
    found = budget_seconds(plan)
    if found is None:
        return None
    seconds, by = found
    steps = None if step_seconds is None else math.floor(seconds / step_seconds)
    return Allowance(seconds, by, steps, step_seconds)


def step_seconds_of(plan: Plan) -> float | None:
    """The step time the plan's cost was estimated at (resources.step_seconds), if any."""
    c, steps = plan.cost, plan.trainer.training.max_steps
    if c.hours is None or steps <= 0:
        return None
    # Cost keeps hours rounded to 0.01: recover the step time from the recipe's record
    recorded = (plan.recipe.get("resources") or {}).get("step_seconds")
    return float(recorded) if recorded else c.hours * 3600 / steps


def budget_line(plan: Plan, step_seconds: float | None) -> str | None:
    """One sentence for plan.warnings when a cap will end the run before its last step (or
    when how many steps it allows is not known), else None."""
    a = allowance(plan, step_seconds)
    if a is None:
        return None
    cap = _cap_text(plan, a)
    max_steps = plan.trainer.training.max_steps
    if a.steps is None:
        return (
            f"budget: {cap} stops the run after ~{_duration(a.seconds)}, with a checkpoint "
            "(set resources.step_seconds to see how many steps that is)"
        )
    if a.steps >= max_steps:
        return None
    return (
        f"budget: {cap} allows ~{a.steps} of {max_steps} steps at ~{a.step_seconds:g} s/step; "
        "the run stops at the cap with a checkpoint"
    )


def budget_rows(plan: Plan) -> list[tuple[str, str]]:
    """The `budget` row for `vft plan` (none without a cap): when the cap stops the run
    and, at resources.step_seconds, after how many steps. The price is the cost line's."""
    a = allowance(plan, step_seconds_of(plan))
    if a is None:
        return []
    text = f"{_cap_text(plan, a)}: stops after ~{_duration(a.seconds)}, a checkpoint first"
    max_steps = plan.trainer.training.max_steps
    if a.steps is not None:
        text += (
            f"; ~{a.steps} of {max_steps} steps at ~{a.step_seconds:g} s/step"
            if a.steps < max_steps
            else f"; enough for all {max_steps} steps at ~{a.step_seconds:g} s/step"
        )
    return [("budget", text)]


def _cap_text(plan: Plan, a: Allowance) -> str:
    if a.by == "max_usd":
        assert plan.run.max_usd is not None
        return f"${plan.run.max_usd:.2f} at ${plan.cost.usd_per_hour:.2f}/h"
    assert plan.run.max_hours is not None
    return f"{plan.run.max_hours:g} h"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
