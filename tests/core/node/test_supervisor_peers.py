"""Multi-node end of training: a serve-only node stops when the trainer nodes say so.

Both nodes run on 127.0.0.1 as two real the node entry (`python -m vft.core.node`) processes, as a cluster would run them.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from vft.testing import free_port

ADDRESSES = "127.0.0.1,127.0.0.1"


def agent(attempt, rank: int) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "vft.core.node", str(attempt.path), "--node-rank", str(rank)]
    argv += ["--addresses", ADDRESSES, "--no-echo"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def two_node_plan(proc, make_plan, port: int, trainer_exit: int):
    server = proc(
        "inference-0", "server.py", "--port", port, role="inference", node=0,
        ready_url=f"http://127.0.0.1:{port}/health",
    )  # fmt: skip
    trainer = proc("trainer-1", "trainer.py", "--exit", trainer_exit, "--wait-port", port, node=1)
    plan = make_plan(
        server, trainer, nodes=2, inference={"engine": "x", "port": port, "head_node": 0}
    )
    return dataclasses.replace(plan, ports=dataclasses.replace(plan.ports, control=free_port()))


def run_both(plan, attempt) -> tuple[int, int, str]:
    serving, training = agent(attempt, 0), agent(attempt, 1)
    out1, _ = training.communicate(timeout=60)
    out0, _ = serving.communicate(timeout=30)
    return serving.returncode, training.returncode, out0 + out1


def test_serve_only_node_ends_when_training_succeeds(proc, make_plan, new_attempt, port):
    plan = two_node_plan(proc, make_plan, port, trainer_exit=0)
    attempt = new_attempt(plan)
    code0, code1, out = run_both(plan, attempt)
    assert (code0, code1) == (0, 0), out
    assert "training finished on every trainer node" in attempt.log_path("vft").read_text()
    assert attempt.node(0)["processes"]["inference-0"]["stopped"] is True


def test_serve_only_node_fails_with_the_trainer_nodes_code(proc, make_plan, new_attempt, port):
    plan = two_node_plan(proc, make_plan, port, trainer_exit=3)
    attempt = new_attempt(plan)
    code0, code1, out = run_both(plan, attempt)
    assert (code0, code1) == (3, 3), out
    assert "the trainer on node 1 failed (exit code 3)" in attempt.log_path("vft").read_text()
