"""The budget clock under the real supervisor: a trainer asked to save and stop before the
cap, one that ignores the request stopped before the cap, and the clock's arithmetic."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from vft.core.node.budget import (
    DEFAULT_MARGIN_S,
    EXIT_S,
    TEARDOWN_S,
    BudgetClock,
    Due,
    last_step_seconds,
)
from vft.core.node.supervisor import run_node
from vft.core.plan import Cost, NodeContext
from vft.core.runs.folders import FINISHED, RunStatus


def run(plan, attempt) -> int:
    return run_node(plan, attempt, NodeContext(0, ("127.0.0.1",), str(attempt.path)), echo=False)


def trainer(proc, *args: object):
    return proc("trainer", "budget_trainer.py", "{{run_dir}}", *args)


def test_the_trainer_is_asked_to_save_and_stop_before_the_cap(proc, make_plan, new_attempt):
    limit = 12.0
    plan = make_plan(trainer(proc, "--step-s", "0.2"), max_hours=limit / 3600, stop_grace_s=1.0)
    attempt = new_attempt(plan)
    started = time.monotonic()
    assert run(plan, attempt) == 0
    took = time.monotonic() - started
    record, node = attempt.record(), attempt.node(0)
    assert record["status"] == RunStatus.STOPPED_BUDGET == "stopped: budget"
    assert RunStatus.STOPPED_BUDGET in FINISHED
    assert record["exit_code"] == 0 and record["stop_reason"] == "budget"
    assert node["status"] == "stopped: budget" and node["stop_reason"] == "budget"
    budget = record["budget"]
    assert budget["cap"] == "max_hours" and budget["limit_s"] == limit
    assert "forced_at_s" not in budget  # the trainer stopped by itself
    # it asked once the margin (grace, slack, a step and a save, measured) was left
    assert budget["margin_s"] > 1.0 + TEARDOWN_S + EXIT_S
    assert -0.1 <= budget["requested_at_s"] - (limit - budget["margin_s"]) < 0.5
    assert took < limit
    log = attempt.log_path("trainer").read_text()
    last = int(log.split("budget stop at step ")[1].split()[0])
    assert budget["checkpoint"] == f"checkpoints/checkpoint-{last}"
    assert (attempt.path / "checkpoints" / f"checkpoint-{last}" / "vft-checkpoint.json").is_file()
    request = json.loads(attempt.stop_request_path.read_text())
    assert request["reason"] == "budget"
    events = attempt.log_path("vft").read_text()
    assert "asking the trainer to save a checkpoint and stop" in events
    assert "newest complete checkpoint: checkpoints/checkpoint-" in events


def test_a_trainer_that_ignores_the_request_is_stopped_before_the_cap(proc, make_plan, new_attempt):
    limit, grace = 6.0, 1.0
    plan = make_plan(
        trainer(proc, "--ignore", "--step-s", "0.1", "--save-every", "5"),
        max_hours=limit / 3600,
        stop_grace_s=grace,
    )
    attempt = new_attempt(plan)
    started = time.monotonic()
    assert run(plan, attempt) == 0
    took = time.monotonic() - started
    record = attempt.record()
    assert record["status"] == "stopped: budget" and record["stop_reason"] == "budget"
    stop_at = limit - grace - TEARDOWN_S
    assert stop_at - 0.1 < record["budget"]["forced_at_s"] < stop_at + 0.5
    assert took < limit  # SIGTERM at cap - grace - teardown: gone by the cap
    assert record["budget"]["elapsed_s"] < limit
    assert attempt.node(0)["processes"]["trainer"]["stopped"] is True
    # the newest complete checkpoint written before the stop is the one recorded
    assert record["budget"]["checkpoint"].startswith("checkpoints/checkpoint-")
    assert "the trainer has not stopped; stopping every process" in (
        attempt.log_path("vft").read_text()
    )


def test_a_money_cap_at_the_plans_price(proc, make_plan, new_attempt):
    # $36/h: one cent a second; $0.06 lasts 6 s
    plan = make_plan(trainer(proc, "--step-s", "0.2"), max_usd=0.06, stop_grace_s=1.0)
    plan = replace(plan, cost=Cost(36.0, source="recipe"))
    attempt = new_attempt(plan)
    assert run(plan, attempt) == 0
    budget = attempt.record()["budget"]
    assert budget["cap"] == "max_usd" and budget["limit_s"] == 6.0
    assert budget["usd_per_hour"] == 36.0 and 0 < budget["spent_usd"] < 0.06
    assert attempt.record()["status"] == "stopped: budget"
    assert "$0.06 spent ($36.00/h" in attempt.log_path("vft").read_text()


def test_a_run_without_a_cap_has_no_clock_and_succeeds(proc, make_plan, new_attempt):
    plan = make_plan(trainer(proc, "--steps", "2", "--step-s", "0.05"))
    assert BudgetClock.for_plan(plan, Path("."), 1.0) is None
    attempt = new_attempt(plan)
    assert run(plan, attempt) == 0
    record = attempt.record()
    assert record["status"] == "succeeded" and "stop_reason" not in record
    assert not attempt.stop_request_path.exists()


# -- the clock's arithmetic, at chosen moments ---------------------------------------------


def clock(make_plan, tmp_path: Path, limit_s: float, grace: float = 10.0) -> BudgetClock:
    plan = make_plan(max_hours=limit_s / 3600)
    found = BudgetClock.for_plan(plan, tmp_path, grace, start=1000.0)
    assert found is not None
    return found


def test_before_anything_is_measured_the_margin_is_the_default(make_plan, tmp_path):
    c = clock(make_plan, tmp_path, 10 * 3600)
    assert c.margin() == DEFAULT_MARGIN_S
    assert c.due(1000.0 + 10 * 3600 - DEFAULT_MARGIN_S - 1) is None
    assert c.due(1000.0 + 10 * 3600 - DEFAULT_MARGIN_S) == Due.REQUEST
    assert c.due(1000.0 + 10 * 3600 - 10 - TEARDOWN_S - 1) is None  # once
    assert c.due(1000.0 + 10 * 3600 - 10 - TEARDOWN_S) == Due.STOP  # cap - grace - teardown
    assert c.due(1000.0 + 10 * 3600) is None and c.ended_run


def test_a_short_cap_keeps_a_quarter_of_itself_as_margin(make_plan, tmp_path):
    c = clock(make_plan, tmp_path, 600, grace=1.0)
    assert c.margin() == 150.0


def test_the_margin_is_measured_from_the_steps_and_the_last_save(make_plan, tmp_path):
    rows = [
        {"step": s, "time": 100.0 + 30 * s + (20 if s == 4 else 0), "loss": 0}
        for s in (1, 2, 3, 4, 5)
    ]
    rows.insert(2, {"step": 2, "time": 999.0, "eval/reward": 1.0})  # an eval row: not a step
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ckpt = tmp_path / "checkpoints" / "checkpoint-4"
    ckpt.mkdir(parents=True)
    (ckpt / "vft-checkpoint.json").write_text(json.dumps({"step": 4, "save_s": 40.0}))
    (tmp_path / "checkpoints" / "checkpoint-5").mkdir()  # not marked: not complete
    assert last_step_seconds(tmp_path / "metrics.jsonl") == 50.0  # the longest of the last
    c = clock(make_plan, tmp_path, 10 * 3600, grace=10.0)
    c.refresh()
    assert c.measured.step_s == 50.0 and c.measured.save_s == 40.0
    assert c.measured.checkpoint == "checkpoints/checkpoint-4"
    assert c.margin() == 10.0 + TEARDOWN_S + EXIT_S + 1.5 * (50.0 + 40.0)
