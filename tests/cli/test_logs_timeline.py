"""`vft logs`: one timeline of the supervisor's and the processes' logs, merged by the
times their lines carry, on a run folder written here in the layout a run leaves."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from vft.core.runs.folders import Attempt, run_folder
from vft.testing import plan_of, run_vft

#: 10:00:00 local time on a fixed day: the supervisor writes local times of day
T0 = time.mktime((2026, 3, 14, 10, 0, 0, 0, 0, -1))
#: the times lines carry (the supervisor's, vLLM's), taken out to compare the rest
STAMP = re.compile(r"(?<=\] )(?:INFO \d\d-\d\d )?\d\d:\d\d:\d\d ")


def hms(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def make_run(out: Path) -> Attempt:
    """A finished run: vft.log stamped by the supervisor, an inference server whose lines
    carry vLLM's stamps, a trainer whose step lines carry none (metrics.jsonl times them)."""
    attempt = run_folder(out, "tl").new_attempt(plan_of(name="tl"), "local")
    attempt.update(status="succeeded", started_at=T0, ended_at=T0 + 60, exit_code=0)
    attempt.logs_dir.mkdir(parents=True, exist_ok=True)
    vft_lines = [
        (0, "started inference (pid 11): vllm serve m"),
        (1, "started trainer (pid 12): python -m vft.train"),
        (20, "inference ready after 20.0 s"),
        (40, "trainer exited with code 0"),
        (41, "training finished: stopping the inference server"),
    ]
    (attempt.logs_dir / "vft.log").write_text("".join(f"{hms(T0 + s)} {t}\n" for s, t in vft_lines))
    vllm = time.strftime("%m-%d %H:%M:%S", time.localtime(T0 + 5))
    ready = time.strftime("%m-%d %H:%M:%S", time.localtime(T0 + 19))
    (attempt.logs_dir / "inference.log").write_text(
        f"INFO {vllm} [api_server.py:1] loading model\nno stamp on this line\n"
        f"INFO {ready} [api_server.py:2] Application startup complete.\n"
    )
    (attempt.logs_dir / "trainer.log").write_text(
        "vft.train: loading torch, transformers and TRL...\n"
        "vft.train: step 1/2 | reward 0.5\n"
        "a library's warning between steps\n"
        "vft.train: step 2/2 | reward 1.0\n"
        "vft.train: done at step 2"
    )
    rows = [{"step": 1, "time": T0 + 25.2, "reward": 0.5}, {"step": 2, "time": T0 + 35.7}]
    (attempt.path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return attempt


@pytest.mark.parametrize("follow", [False, True], ids=["once", "follow"])
def test_logs_are_one_timeline(tmp_path: Path, follow: bool) -> None:
    """Lines interleave by time: the supervisor's exit line comes after the trainer's last
    line, not before its first; unstamped lines stay right after their file's line before."""
    make_run(tmp_path)
    got = run_vft("logs", "tl", "--output-dir", tmp_path, *(["-f"] if follow else []))
    assert got.returncode == 0, got.stderr
    texts = [STAMP.sub("", line) for line in got.stdout.splitlines()]
    assert texts == [
        "[vft] started inference (pid 11): vllm serve m",
        "[vft] started trainer (pid 12): python -m vft.train",
        "[trainer] vft.train: loading torch, transformers and TRL...",
        "[inference] [api_server.py:1] loading model",
        "[inference] no stamp on this line",
        "[inference] [api_server.py:2] Application startup complete.",
        "[vft] inference ready after 20.0 s",
        "[trainer] vft.train: step 1/2 | reward 0.5",
        "[trainer] a library's warning between steps",
        "[trainer] vft.train: step 2/2 | reward 1.0",
        "[trainer] vft.train: done at step 2",
        "[vft] trainer exited with code 0",
        "[vft] training finished: stopping the inference server",
    ]


def test_one_process_log_is_its_file(tmp_path: Path) -> None:
    """--process shows that file alone, unprefixed, in its own order."""
    make_run(tmp_path)
    got = run_vft("logs", "tl", "--output-dir", tmp_path, "-p", "trainer")
    assert got.returncode == 0, got.stderr
    file = (tmp_path / "tl" / "attempt-1" / "logs" / "trainer.log").read_text()
    assert got.stdout.splitlines() == file.splitlines()


def test_a_coarser_stamp_never_moves_a_line_back_in_its_file(tmp_path: Path) -> None:
    """vLLM's whole seconds after a logger's milliseconds: the file's order stands."""
    attempt = make_run(tmp_path)
    second = time.strftime("%m-%d %H:%M:%S", time.localtime(T0 + 5))
    exact = time.strftime("%Y-%m-%d %H:%M:%S,900", time.localtime(T0 + 5))
    lines = [f"INFO {second} first", f"{exact} second", f"INFO {second} third"]
    (attempt.logs_dir / "inference.log").write_text("\n".join(lines) + "\n")
    for args in ((), ("-p", "inference")):
        got = run_vft("logs", "tl", "--output-dir", tmp_path, *args)
        assert got.returncode == 0, got.stderr
        order = [w for line in got.stdout.splitlines() for w in line.split()[-1:]]
        mine = [w for w in order if w in ("first", "second", "third")]
        assert mine == ["first", "second", "third"], got.stdout


def test_a_supervisor_quiet_for_more_than_half_a_day_stays_in_order(tmp_path: Path) -> None:
    """`started trainer` at 10:00, `trainer exited` at 09:00 the next day (23 h later):
    the exit is the next day, after every trainer line, not before the start."""
    attempt = run_folder(tmp_path, "tl").new_attempt(plan_of(name="tl"), "local")
    attempt.update(status="succeeded", started_at=T0, ended_at=T0 + 82800, exit_code=0)
    attempt.logs_dir.mkdir(parents=True, exist_ok=True)
    (attempt.logs_dir / "vft.log").write_text(
        f"{hms(T0)} started trainer (pid 12): python -m vft.train\n"
        f"{hms(T0 + 82800)} trainer exited with code 0\n"
    )
    late = time.strftime("%Y-%m-%d %H:%M:%S,000", time.localtime(T0 + 80000))
    (attempt.logs_dir / "trainer.log").write_text(f"early line\n[{late}] late line\n")
    got = run_vft("logs", "tl", "--output-dir", tmp_path)
    assert got.returncode == 0, got.stderr
    texts = [STAMP.sub("", line) for line in got.stdout.splitlines()]
    assert texts == [
        "[vft] started trainer (pid 12): python -m vft.train",
        "[trainer] early line",
        f"[trainer] [{late}] late line",
        "[vft] trainer exited with code 0",
    ]
