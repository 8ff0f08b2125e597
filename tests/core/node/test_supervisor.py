"""The supervisor with real processes: readiness, crash propagation, teardown, records.

Every scenario runs fixture programs under `run_node` and ends by checking (through the
`no_leftovers` fixture) that no process of the test is still alive.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from vft.core.node.supervisor import EXIT_NOT_FOUND, EXIT_READY_TIMEOUT, run_node
from vft.core.plan import NodeContext
from vft.testing import wait_gone


def run(plan, attempt, rank: int = 0, addresses=("127.0.0.1",)) -> int:
    return run_node(plan, attempt, NodeContext(rank, addresses, str(attempt.path)))


def health(port: int) -> str:
    return f"http://127.0.0.1:{port}/health"


def server(proc, port: int, *args: object, name: str = "inference"):
    return proc(name, "server.py", "--port", port, *args, role="inference", ready_url=health(port))


def test_trainer_success_stops_the_server_and_exits_0(proc, make_plan, new_attempt, port):
    plan = make_plan(
        server(proc, port, "--delay", "0.5"),
        # steps long enough that the 0.2 s readiness poll sees the server before training ends
        proc("trainer", "trainer.py", "--wait-port", port, "--step-s", "0.4"),
    )
    attempt = new_attempt(plan)
    assert run(plan, attempt) == 0
    record, node = attempt.record(), attempt.node(0)
    assert record["status"] == "succeeded" and record["exit_code"] == 0
    assert node["processes"]["trainer"]["exit_code"] == 0
    assert node["processes"]["inference"]["stopped"] is True
    assert 0.4 < node["ready_s"] < 10  # the latency itself is measured by the bench
    assert "step 3/3" in attempt.log_path("trainer").read_text()
    assert "server: healthy" in attempt.log_path("inference").read_text()
    assert "training finished" in attempt.log_path("vft").read_text()


def test_overlap_starts_the_trainer_before_the_server_is_ready(proc, make_plan, new_attempt, port):
    plan = make_plan(
        server(proc, port, "--delay", "1.0"),
        proc("trainer", "trainer.py", "--wait-port", port),
        trainer_start="overlap",
    )
    attempt = new_attempt(plan)
    assert run(plan, attempt) == 0
    node = attempt.node(0)
    assert node["processes"]["trainer"]["started_at"] < node["ready_at"] - 0.5


def test_after_ready_gates_the_trainer_on_health(proc, make_plan, new_attempt, port):
    plan = make_plan(
        server(proc, port, "--delay", "0.6"),
        proc("trainer", "trainer.py"),
        trainer_start="after_ready",
    )
    attempt = new_attempt(plan)
    assert run(plan, attempt) == 0
    node = attempt.node(0)
    assert node["processes"]["trainer"]["started_at"] >= node["ready_at"]


def test_trainer_failure_is_reported_with_its_code_and_last_lines(
    proc, make_plan, new_attempt, port, capfd
):
    plan = make_plan(
        server(proc, port),
        proc("trainer", "trainer.py", "--exit", "3", "--wait-port", port),
    )
    attempt = new_attempt(plan)
    assert run(plan, attempt) == 3
    record = attempt.record()
    assert record["status"] == "failed"
    assert record["failed"] == {
        "process": "trainer",
        "reason": "exited with code 3",
        "exit_code": 3,
    }
    out = capfd.readouterr().out
    assert "trainer failed: exited with code 3; last 5 lines of logs/trainer.log:" in out
    assert "|   trainer: RuntimeError: fixture failure, exiting 3" in out.replace("  | ", "|   ")
    assert "[inference]" in out and "[trainer]" in out  # the live merge, prefixed


def test_server_dying_during_startup_fails_fast_and_never_starts_the_trainer(
    proc, make_plan, new_attempt, port
):
    plan = make_plan(
        server(proc, port, "--delay", "30", "--die-after", "0.3", "--code", "7"),
        proc("trainer", "trainer.py"),
        trainer_start="after_ready",
        ready_timeout_s=60,
    )
    attempt = new_attempt(plan)
    started = time.monotonic()
    assert run(plan, attempt) == 7
    assert time.monotonic() - started < 5
    failed = attempt.record()["failed"]
    assert failed["process"] == "inference"
    assert failed["reason"] == "exited with code 7 before it was ready"
    assert "trainer" not in attempt.node(0)["processes"]
    assert "CUDA out of memory" in attempt.log_path("vft").read_text()  # the tail, in vft.log


def test_readiness_timeout(proc, make_plan, new_attempt, port):
    plan = make_plan(
        server(proc, port, "--delay", "30"),
        proc("trainer", "trainer.py", "--wait-port", port, "--steps", "0"),
        ready_timeout_s=0.8,
    )
    attempt = new_attempt(plan)
    assert run(plan, attempt) == EXIT_READY_TIMEOUT
    assert "not ready after 0.8 s" in attempt.record()["failed"]["reason"]


def test_server_exiting_0_while_training_is_a_failure(proc, make_plan, new_attempt, port):
    plan = make_plan(
        proc("inference", "trainer.py", "--steps", "2", role="inference"),
        proc("trainer", "trainer.py", "--steps", "200"),
    )
    attempt = new_attempt(plan)
    assert run(plan, attempt) == 1
    assert attempt.record()["failed"]["reason"] == "exited with code 0 while the trainer runs"


def test_sigterm_ignoring_process_is_killed_after_the_grace(proc, make_plan, new_attempt, tmp_path):
    pid_file = tmp_path / "stubborn.pid"
    plan = make_plan(
        proc("inference", "stubborn.py", "--pid-file", pid_file, role="inference"),
        proc("trainer", "trainer.py", "--steps", "5"),
        stop_grace_s=1.0,
    )
    attempt = new_attempt(plan)
    started = time.monotonic()
    assert run(plan, attempt) == 0
    took = time.monotonic() - started
    assert 1.0 < took < 8  # the grace elapsed once, then SIGKILL
    assert wait_gone([int(pid_file.read_text())], timeout=0.5) == []
    assert attempt.node(0)["processes"]["inference"]["exit_code"] == 137  # SIGKILL


@pytest.mark.parametrize("forker_exits", [False, True])
def test_grandchildren_outside_the_group_are_stopped(
    proc, make_plan, new_attempt, tmp_path, forker_exits
):
    """Grandchildren in the group, in their own session, and double-forked all go."""
    pid_file = tmp_path / "forker.pids"
    args = ["--exit-after", "0.5"] if forker_exits else []
    plan = make_plan(
        proc("inference", "forker.py", "--pid-file", pid_file, *args, role="inference"),
        proc("trainer", "trainer.py", "--steps", "30", "--exit", "4"),
        stop_grace_s=0.5,
    )
    attempt = new_attempt(plan)
    code = run(plan, attempt)
    pids = [int(p) for p in pid_file.read_text().split()]
    assert wait_gone(pids, timeout=1.0) == []
    if forker_exits:  # the forker's own failure comes first
        assert code == 5 and attempt.record()["failed"]["process"] == "inference"
    else:
        assert code == 4 and attempt.record()["failed"]["process"] == "trainer"


def test_missing_command_starts_nothing(proc, make_plan, new_attempt, port):
    missing = proc("trainer", "trainer.py")
    missing = type(missing)(**{**missing.__dict__, "argv": ("vft-no-such-program", "x")})
    plan = make_plan(server(proc, port), missing)
    attempt = new_attempt(plan)
    assert run(plan, attempt) == EXIT_NOT_FOUND
    assert attempt.node(0)["processes"] == {}
    assert "'vft-no-such-program' not found" in attempt.record()["failed"]["reason"]


def test_bare_program_resolves_beside_python_first(make_plan, new_attempt, no_leftovers):
    """`python3` is found next to sys.executable (the venv's bin) before PATH."""
    from vft.core.node.procs import resolve_program

    env = {"PATH": "/nonexistent"}
    import sys

    beside = Path(sys.executable).parent
    name = next(n for n in ("python3", "python") if (beside / n).exists())
    assert resolve_program(name, env) == str(beside / name)
    assert resolve_program("sh", {"PATH": "/bin:/usr/bin"}) in ("/bin/sh", "/usr/bin/sh")
    assert resolve_program("vft-no-such-program", env) is None


def test_trainer_node_of_a_multi_node_plan_waits_on_the_remote_head(
    proc, make_plan, new_attempt, port, no_leftovers
):
    """Node 0 runs only a trainer; the server is "node 1" (a real server on this machine)."""
    import subprocess
    import sys

    from tests.conftest import PROCS

    head = subprocess.Popen(
        [sys.executable, str(PROCS / "server.py"), "--port", str(port), "--delay", "0.8"],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "VFT_TEST_TOKEN": no_leftovers},
    )
    try:
        plan = make_plan(
            proc("inference-1", "server.py", "--port", port, role="inference", node=1),
            proc("trainer-0", "trainer.py", node=0),
            nodes=2,
            inference={"engine": "vllm", "port": port, "head_node": 1},
            trainer_start="after_ready",
        )
        attempt = new_attempt(plan)
        started = time.time()
        assert run(plan, attempt, rank=0, addresses=("127.0.0.1", "127.0.0.1")) == 0
        node = attempt.node(0)
        assert node["processes"]["trainer-0"]["started_at"] >= node["ready_at"] > started + 0.6
        assert attempt.record()["status"] == "succeeded"
        assert not attempt.node_path(1).exists()  # each node writes only its own record
    finally:
        head.kill()
        head.wait()


def test_secrets_are_redacted_from_logs_console_and_records(
    proc, make_plan, new_attempt, monkeypatch, capfd
):
    secret = "hf_Secret0123456789"
    monkeypatch.setenv("HF_TOKEN", secret)
    plan = make_plan(
        proc("trainer", "trainer.py", "--print-env", "HF_TOKEN", "--steps", "1", f"x={secret}")
    )
    attempt = new_attempt(plan)
    assert run(plan, attempt) == 0
    out = capfd.readouterr().out
    # plan.json is the exact command (a secret the recipe itself writes into argv stays there)
    written = "".join(
        p.read_text() for p in attempt.path.rglob("*") if p.is_file() and p.name != "plan.json"
    )
    assert secret not in out and secret not in written
    assert "HF_TOKEN is ***" in attempt.log_path("trainer").read_text()
    assert "x=***" in str(attempt.node(0)["processes"]["trainer"]["argv"])


def test_flooding_child_is_never_blocked_and_loses_nothing_in_its_log(
    proc, make_plan, new_attempt, tmp_path
):
    result = tmp_path / "flood.s"
    plan = make_plan(proc("trainer", "flood.py", "--mb", "20", "--result", result))
    attempt = new_attempt(plan)
    assert run(plan, attempt) == 0
    assert attempt.log_path("trainer").stat().st_size == (20 << 20) // 100 * 100
    assert float(result.read_text()) < 10


def test_pid_records_match_real_processes(proc, make_plan, new_attempt, port):
    plan = make_plan(server(proc, port), proc("trainer", "trainer.py", "--wait-port", port))
    attempt = new_attempt(plan)
    assert run(plan, attempt) == 0
    me = psutil.Process()
    node = attempt.node(0)
    assert node["supervisor_pid"] == me.pid
    for info in node["processes"].values():
        assert info["pgid"] == info["pid"] and info["exit_code"] is not None


def test_processes_start_in_the_recipes_folder(proc, make_plan, new_attempt, tmp_path):
    """`run.workdir` (the recipe's folder): relative paths in argv start there, whatever
    folder the node itself was started from."""
    from dataclasses import replace

    folder = tmp_path / "project"
    (folder / "bin").mkdir(parents=True)
    (folder / "where.py").write_text(
        "import os, time; print('cwd=' + os.getcwd(), flush=True); time.sleep(1)\n"
    )
    tool = folder / "bin" / "tool"
    tool.write_text("#!/bin/sh\necho tool-ran\nexec sleep 30\n")
    tool.chmod(0o755)
    trainer = proc("trainer", "trainer.py")
    plan = make_plan(
        replace(trainer, argv=(trainer.argv[0], "where.py")),
        replace(trainer, name="tool", role="inference", argv=("bin/tool",)),
        workdir=str(folder),
    )
    attempt = new_attempt(plan)
    assert run(plan, attempt) == 0
    assert f"cwd={folder}" in attempt.log_path("trainer").read_text()
    assert "tool-ran" in attempt.log_path("tool").read_text()


def test_a_workdir_missing_on_the_node_is_refused_before_anything_starts(
    proc, make_plan, new_attempt, tmp_path
):
    from vft.core.errors import UserError

    plan = make_plan(proc("trainer", "trainer.py"), workdir=str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="is not a folder here"):
        run(plan, new_attempt(plan))
