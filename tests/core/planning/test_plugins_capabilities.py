"""Capabilities as data: what a backend cannot do fails at plan time, with the reason."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vft.core.errors import PlanError
from vft.core.gpus import parse_gpus
from vft.core.planning.capabilities import Capabilities
from vft.plugin import node_argv


def refusal(caps: Capabilities, gpus: str, nodes: int = 1) -> str:
    with pytest.raises(PlanError) as err:
        caps.check("acme", parse_gpus(gpus), nodes)
    return err.value.line()


def test_multi_node_refused_with_the_reason():
    caps = Capabilities(limits={"multi_node": "acme has one machine"})
    assert refusal(caps, "H100:8", nodes=2) == (
        "resources.nodes: backend 'acme' runs on one node only, got nodes = 2 (acme has one machine)"
    )
    caps.check("acme", parse_gpus("H100:8"), 1)  # one node is fine


def test_gpu_types_in_any_spelling_match_the_catalog():
    caps = Capabilities(gpu_types=frozenset({"h100", "a100-80gb"}))
    caps.check("acme", parse_gpus("H100:2"), 1)
    caps.check("acme", parse_gpus("A100:80GB:2"), 1)
    assert refusal(caps, "L4:1") == (
        "resources.gpus: backend 'acme' does not offer L4; it offers A100-80GB, H100"
    )


def test_no_gpu_backend():
    caps = Capabilities(gpu_types=frozenset(), limits={"gpu_types": "CPU machines only"})
    caps.check("acme", parse_gpus("cpu"), 1)
    assert refusal(caps, "T4:1") == (
        "resources.gpus: backend 'acme' does not offer T4; it offers no GPUs (CPU machines only)"
    )


def test_gpus_per_node_and_nodes_limits():
    caps = Capabilities(multi_node=True, max_gpus_per_node=8, max_nodes=4)
    assert refusal(caps, "H100:16") == (
        "resources.gpus: backend 'acme' gives at most 8 GPUs per node, got H100:16; "
        "use nodes = 2 with H100:8"
    )
    assert refusal(caps, "H100:8", nodes=5) == (
        "resources.nodes: backend 'acme' allows at most 4 nodes, got 5"
    )
    single = Capabilities(max_gpus_per_node=4)
    assert refusal(single, "H100:8").endswith("got H100:8; use fewer GPUs")


def test_cpu_recipes_refused_by_gpu_only_backend():
    caps = Capabilities(cpu=False, limits={"cpu": "acme rents GPUs only"})
    assert refusal(caps, "cpu") == (
        "resources.gpus: backend 'acme' cannot run CPU-only recipes (acme rents GPUs only)"
    )


def test_require_a_yes_no_feature():
    caps = Capabilities(detach=False, limits={"detach": "runs end with the SSH session"})
    with pytest.raises(PlanError) as err:
        caps.require("acme", "detach", "--detach")
    assert err.value.line() == (
        "--detach: backend 'acme' cannot detach (run in the background and return at once) "
        "(runs end with the SSH session)"
    )
    caps.require("acme", "outputs", "vft outputs")
    with pytest.raises(ValueError):
        caps.require("acme", "max_nodes", "x")


def test_local_backend_refuses_multi_node_at_plan_time():
    """The built-in local backend, through the CLI: the reason comes from its capabilities."""
    env = {**os.environ, "VFT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "vft",
            "plan",
            "examples/recipes/smoke.toml",
            "--set",
            "resources.nodes=2",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", "..")),
    )
    assert out.returncode == 2
    assert out.stderr == (
        "vft: error: resources.nodes: backend 'local' runs on one node only, got nodes = 2 "
        "(one machine; use the modal or slurm backend for nodes > 1)\n"
    )


def test_node_argv():
    assert node_argv("/runs/x/attempt-1", 1, ["10.0.0.1", "10.0.0.2"]) == [
        "python", "-m", "vft.core.node", "/runs/x/attempt-1",
        "--node-rank", "1", "--addresses", "10.0.0.1,10.0.0.2",
    ]  # fmt: skip
    slurm = node_argv("$RUN", "$SLURM_NODEID", "$ADDRS", python="/opt/venv/bin/python")
    assert slurm[0] == "/opt/venv/bin/python" and slurm[-3:] == [
        "$SLURM_NODEID",
        "--addresses",
        "$ADDRS",
    ]
    assert node_argv("/r", echo=False)[-1] == "--no-echo"
