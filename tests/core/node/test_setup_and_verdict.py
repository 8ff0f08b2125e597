"""Setup steps run before a node's processes, and a failed process's own verdict line is
shown first. Real processes (fixture programs and `python -c`), real logs."""

from __future__ import annotations

import dataclasses
import json
import sys

from vft.core.node.supervisor import run_node
from vft.core.node.verdict import verdict
from vft.core.plan import NodeContext, SetupStep


def run(plan, attempt) -> int:
    return run_node(plan, attempt, NodeContext(0, ("127.0.0.1",), str(attempt.path)), echo=False)


def step(name: str, code: str, node: int = 0) -> SetupStep:
    return SetupStep(name, node, (sys.executable, "-c", code), {"PYTHONUNBUFFERED": "1"})


def test_setup_steps_run_in_order_before_the_processes(proc, make_plan, new_attempt, tmp_path):
    marker = tmp_path / "built"
    plan = make_plan(
        proc("trainer", "trainer.py", "--started-file", tmp_path / "trainer-started"),
    )
    code = (
        "import pathlib, sys, time; p = pathlib.Path(sys.argv[1]); time.sleep(0.3); "
        "p.write_text(str(time.time())); print('built', p)"
    )
    setup = SetupStep("build", 0, (sys.executable, "-c", code, "{{run_dir}}/built"))
    plan = dataclasses.replace(plan, setup=(setup,))
    attempt = new_attempt(plan)
    assert run(plan, attempt) == 0
    built = attempt.path / "built"  # the placeholder was filled with the run folder
    assert built.is_file() and not marker.exists()
    started = float((tmp_path / "trainer-started").read_text())
    assert started > float(built.read_text())  # the trainer started after the step ended
    assert "built" in attempt.log_path("setup-build").read_text()


def test_a_failed_setup_step_fails_the_node_before_anything_starts(
    proc, make_plan, new_attempt, tmp_path
):
    plan = make_plan(proc("trainer", "trainer.py", "--started-file", tmp_path / "started"))
    failing = step("build", "import sys; print('vft.tiny: error: disk full'); sys.exit(3)")
    plan = dataclasses.replace(plan, setup=(failing,))
    attempt = new_attempt(plan)
    assert run(plan, attempt) == 3
    assert not (tmp_path / "started").exists()
    record = json.loads((attempt.path / "run.json").read_text())
    assert record["status"] == "failed"
    assert record["failed"]["process"] == "setup-build"
    assert record["failed"]["reason"].startswith("vft.tiny: error: disk full")
    events = attempt.log_path("vft").read_text()
    assert "setup-build failed: vft.tiny: error: disk full" in events


def test_a_steps_of_another_node_are_not_run_here(proc, make_plan, new_attempt, tmp_path):
    plan = make_plan(proc("trainer", "trainer.py"))
    plan = dataclasses.replace(plan, setup=(step("elsewhere", "import sys; sys.exit(9)", 1),))
    assert run(plan, new_attempt(plan)) == 0


def test_the_verdict_line_is_shown_before_the_launchers_traceback(proc, make_plan, new_attempt):
    code = (
        "import sys\n"
        "print('step 1 ok')\n"
        "print(\"vft.train: error: environment 'x': ValueError: bad row (at env.py:3)\", "
        "file=sys.stderr)\n"
        "print('Traceback (most recent call last):\\n  ChildFailedError: trainer FAILED')\n"
        "sys.exit(1)\n"
    )
    plan = make_plan(proc("trainer", "trainer.py"))
    trainer = dataclasses.replace(plan.processes[0], argv=(sys.executable, "-c", code))
    plan = dataclasses.replace(plan, processes=(trainer,))
    attempt = new_attempt(plan)
    assert run(plan, attempt) == 1
    events = attempt.log_path("vft").read_text().splitlines()
    first = next(i for i, line in enumerate(events) if "trainer failed:" in line)
    assert events[first].endswith(
        "trainer failed: vft.train: error: environment 'x': ValueError: bad row (at env.py:3)"
    )
    record = json.loads((attempt.path / "run.json").read_text())
    assert record["failed"]["reason"].startswith("vft.train: error: environment 'x'")


def test_verdict_finds_the_newest_error_line(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("vft.train: error: first\nnoise\n[rank0] vft.train: error: second\nmore\n")
    assert verdict(log) == "vft.train: error: second"
    log.write_text("no verdict here\n")
    assert verdict(log) is None
    assert verdict(tmp_path / "missing.log") is None
