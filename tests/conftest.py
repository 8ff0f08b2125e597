"""Shared fixtures: plans built from real fixture programs, run folders, leftover checks.

The fixtures and helpers a plugin's tests would use too (`no_leftovers`, `tiny_recipe`,
`plan_for`, `node_harness`, `run_vft`, ...) are in vft/testing.py, a pytest plugin.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

import pytest

# torch's cpp_extension imports setuptools, whose distutils shim asserts it loaded first;
# once any earlier test has imported the stdlib's distutils it would fail mid-run
os.environ.setdefault("SETUPTOOLS_USE_DISTUTILS", "stdlib")

from vft.core.plan import Plan, Process
from vft.core.runs.folders import Attempt, run_folder

# vft.testing registers itself through its `pytest11` entry point once that is installed;
# until then (or with autoloading off) it is registered here. Both would be an error.
_AUTOLOADED = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") and any(
    ep.value == "vft.testing" for ep in entry_points(group="pytest11")
)
pytest_plugins = [] if _AUTOLOADED else ["vft.testing"]

PROCS = Path(__file__).parent / "fixtures" / "procs"


@pytest.fixture
def proc(no_leftovers: str) -> Callable[..., Process]:
    """`proc(name, fixture_script, *args, role=..., ready_url=..., env=...)` -> a Process."""

    def make(
        name: str,
        script: str,
        *args: object,
        role: str = "trainer",
        node: int = 0,
        ready_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Process:
        from vft.testing import TOKEN_VAR  # not at the top: pytest_plugins imports it first

        argv = (sys.executable, str(PROCS / script), *map(str, args))
        env = {TOKEN_VAR: no_leftovers, "PYTHONUNBUFFERED": "1", **(env or {})}
        return Process(role, name, node, (), argv, env, ready_url)

    return make


@pytest.fixture
def make_plan() -> Callable[..., Plan]:
    """`make_plan(*processes, nodes=1, inference={}, **run_options)` -> a Plan."""

    def make(
        *processes: Process,
        name: str = "t",
        nodes: int = 1,
        inference: dict | None = None,
        **run: object,
    ) -> Plan:
        from vft.testing import plan_of

        return plan_of(*processes, name=name, nodes=nodes, inference=inference, **run)

    return make


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    return tmp_path / "outputs"


@pytest.fixture
def new_attempt(output_dir: Path) -> Callable[[Plan], Attempt]:
    """A fresh attempt folder for a plan under the test's output dir."""
    return lambda plan: run_folder(output_dir, plan.name).new_attempt(plan, "local")


@pytest.fixture
def port() -> int:
    from vft.testing import free_port

    return free_port()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault and fuzz suites' one-line tally (tests/reliability.py)."""
    from tests.reliability import summary

    line = summary()
    if line is not None:
        terminalreporter.write_line(line)
