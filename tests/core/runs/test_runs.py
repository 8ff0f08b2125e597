"""Run folders: attempts, atomic and locked records, per-node files, lookups."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from vft.core.errors import UserError
from vft.core.runs.folders import Attempt, find_attempt, list_runs, run_folder


def test_each_launch_is_a_new_attempt(make_plan, output_dir):
    plan = make_plan(name="exp")
    folder = run_folder(output_dir, "exp")
    first, second = folder.new_attempt(plan, "local"), folder.new_attempt(plan, "local")
    assert (first.number, second.number) == (1, 2)
    assert folder.latest() == second
    assert second.record()["attempt"] == 2 and second.record()["status"] == "created"
    assert second.plan() == plan


def _bump(path: str, key: str) -> None:
    attempt = Attempt(Path(path))
    for i in range(50):
        attempt.update(**{f"{key}{i}": i})


def test_concurrent_updates_lose_nothing(make_plan, new_attempt):
    """A launcher and its supervisor both update run.json: the lock keeps every field."""
    attempt = new_attempt(make_plan())
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_bump, args=(str(attempt.path), k)) for k in "ab"]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    record = attempt.record()
    assert all(f"{k}{i}" in record for k in "ab" for i in range(50))


def test_node_records_are_one_file_per_node(make_plan, new_attempt):
    attempt = new_attempt(make_plan())
    attempt.write_node(1, {"status": "running"})
    attempt.write_node(0, {"status": "succeeded"})
    assert attempt.nodes() == {0: {"status": "succeeded"}, 1: {"status": "running"}}
    assert sorted(p.name for p in attempt.nodes_dir.iterdir()) == ["node-0.json", "node-1.json"]


def test_find_attempt_by_name_attempt_or_path(make_plan, output_dir):
    folder = run_folder(output_dir, "exp")
    one = folder.new_attempt(make_plan(name="exp"), "local")
    two = folder.new_attempt(make_plan(name="exp"), "local")
    assert find_attempt("exp", output_dir) == two
    assert find_attempt("exp/attempt-1", output_dir) == one
    assert find_attempt(str(one.path), output_dir) == one
    assert [r.name for r in list_runs(output_dir)] == ["exp"]
    with pytest.raises(UserError, match=r"run 'nope' not found .* \(runs: exp\)"):
        find_attempt("nope", output_dir)


def test_process_names_become_safe_file_names(make_plan, new_attempt):
    attempt = new_attempt(make_plan())
    assert attempt.log_path("inference-0").name == "inference-0.log"
    assert attempt.log_path("../x y").name == ".._x_y.log"
