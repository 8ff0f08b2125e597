"""Broken run records: every command reading a run says "unreadable: <reason>" in one line.

A run.json or node record that is not JSON, cut short, mistyped or gone (a full disk, an
editor, a crash) must never end in a traceback, and vft must not destroy it further: the
bytes on disk are the same after every command. Real subprocesses, as a user runs them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability import case
from vft.core.runs.folders import Attempt, run_folder
from vft.testing import plan_of, run_vft

READERS = (("status", "r"), ("logs", "r"), ("stop", "r"), ("outputs", "ls", "r"))

RUN_RECORDS = {
    "not-json": b"this is not json",
    "truncated": b'{"status": "running", "backend": "lo',
    "a-list": b'["running"]',
    "not-utf8": b'{"status": "\xff\xfe"}',
    "status-number": b'{"status": 5, "backend": "local"}',
    "pid-string": b'{"status": "running", "backend": "local", "supervisor_pid": "12"}',
    "started-at-list": b'{"status": "running", "backend": "local", "started_at": [1]}',
    "backend-object": b'{"status": "running", "backend": {"name": "local"}}',
}


def _attempt(root: Path) -> Attempt:
    attempt = run_folder(root / "outputs", "r").new_attempt(plan_of(name="r"), "local")
    attempt.logs_dir.mkdir()
    (attempt.logs_dir / "vft.log").write_text("started\n")
    return attempt


def _good_run(root: Path) -> Attempt:
    """A healthy run beside the broken one: `vft runs` must still show it."""
    return run_folder(root / "outputs", "fine").new_attempt(plan_of(name="fine"), "local")


def _one_line(out) -> str:
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def _check_every_reader(root: Path, bad: Path, expect: str) -> int:
    """Run every command on the broken run; return how many records vft lost doing so."""
    before = bad.read_bytes() if bad.exists() else None
    listed = run_vft("runs", cwd=root)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert "unreadable:" in listed.stdout and "fine" in listed.stdout, listed.stdout
    for args in READERS:
        out = run_vft(*args, cwd=root)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert _one_line(out).startswith(f"vft: error: r attempt-1: unreadable: {expect}")
    after = bad.read_bytes() if bad.exists() else None
    good = json.loads((root / "outputs" / "fine" / "attempt-1" / "run.json").read_text())
    return int(after != before) + int(good.get("status") != "created")


@pytest.mark.parametrize("content", RUN_RECORDS.values(), ids=RUN_RECORDS.keys())
def test_a_broken_run_json_is_unreadable_in_one_line(tmp_path, content):
    attempt, _ = _attempt(tmp_path), _good_run(tmp_path)
    attempt.record_path.write_bytes(content)
    lost = _check_every_reader(tmp_path, attempt.record_path, "run.json")
    case(records_lost=lost)
    assert lost == 0


def test_a_missing_run_json_is_unreadable_in_one_line(tmp_path):
    attempt, _ = _attempt(tmp_path), _good_run(tmp_path)
    attempt.record_path.unlink()
    lost = _check_every_reader(tmp_path, attempt.record_path, "run.json is missing")
    case(records_lost=lost)
    assert lost == 0


NODE_RECORDS = {
    "not-json": b"{",
    "processes-list": b'{"status": "running", "processes": ["trainer"]}',
    "pid-string": b'{"status": "running", "processes": {"trainer": {"pid": "12"}}}',
    "exit-code-string": b'{"status": "failed", "exit_code": "1"}',
}


@pytest.mark.parametrize("content", NODE_RECORDS.values(), ids=NODE_RECORDS.keys())
def test_a_broken_node_record_is_unreadable_in_one_line(tmp_path, content):
    """status/stop read the node records for pids: a mistyped one must not reach os.kill."""
    attempt, _ = _attempt(tmp_path), _good_run(tmp_path)
    attempt.update(status="running", supervisor_pid=None)
    node = attempt.node_path(0)
    node.parent.mkdir()
    node.write_bytes(content)
    before = attempt.record_path.read_bytes()
    lost = 0
    for args in (("status", "r"), ("stop", "r")):
        out = run_vft(*args, cwd=tmp_path)
        assert out.returncode == 2, (args, out.stderr)
        assert _one_line(out).startswith("vft: error: r attempt-1: unreadable: nodes/node-0.json")
    listed = run_vft("runs", cwd=tmp_path)
    assert listed.returncode == 0 and "unreadable:" in listed.stdout, listed.stderr
    lost += int(node.read_bytes() != content) + int(attempt.record_path.read_bytes() != before)
    case(records_lost=lost)
    assert lost == 0


def test_a_writer_keeps_a_broken_record_aside_and_goes_on(tmp_path):
    """A supervisor updating a run.json someone broke goes on, the bad bytes kept aside."""
    attempt = _attempt(tmp_path)
    attempt.record_path.write_bytes(b"garbage")
    record = attempt.update(status="running")
    assert record == {"status": "running"} and attempt.record() == record
    kept = attempt.path / "run.json.unreadable"
    lost = int(not kept.exists() or kept.read_bytes() != b"garbage")
    case(records_lost=lost)
    assert lost == 0
