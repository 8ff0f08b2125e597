"""Shared fixtures: plans built from real fixture programs, run folders, leftover checks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from vft.core.plan import Plan, Process
from vft.core.runs import Attempt, run_folder

PROCS = Path(__file__).parent / "fixtures" / "procs"
TOKEN_VAR = "VFT_TEST_TOKEN"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_with(token: str) -> list[psutil.Process]:
    """Live processes whose environment carries `token` (so: descendants of a test's plan)."""
    found = []
    for p in psutil.process_iter():
        try:
            mine = p.pid != os.getpid() and p.environ().get(TOKEN_VAR) == token
            if mine and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            continue
    return found


def wait_gone(pids: list[int], timeout: float = 3.0) -> list[int]:
    """The pids of `pids` still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid in pids if psutil.pid_exists(pid) and _not_zombie(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture
def no_leftovers() -> Iterator[str]:
    """A token for a test's processes; after the test, none of them may be alive."""
    token = uuid.uuid4().hex
    yield token
    deadline = time.monotonic() + 3.0
    while (left := processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in left:  # do not leak into other tests, but fail this one
        p.kill()
    assert not left, f"processes left running: {[(p.pid, p.cmdline()) for p in left]}"


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
        options = {"trainer_start": "overlap", "ready_timeout_s": 20, "stop_grace_s": 2, **run}
        return Plan(
            name=name,
            backend="local",
            gpu_type=None,
            gpus_per_node=0,
            nodes=nodes,
            inference=inference or {"engine": None, "port": None},
            trainer={"num_processes": 1, "zero_stage": 3},
            processes=tuple(processes),
            files={},
            memory={"fits": True},
            cost={"usd_per_hour": 0.0},
            run=options,
        )

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
    return free_port()


def run_vft(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`python -m vft ARGS` as a user runs it; `env` is added to this process's environment.

    COLUMNS is wide so that rich never folds a long argv or script line in the output.
    """
    return subprocess.run(
        [sys.executable, "-m", "vft", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "1000", **(env or {})},
        timeout=timeout,
    )


USER_RECIPE = """\
name = "exp"
[model]
name = "willcb/Qwen3-1.7B"
[environment]
id = "my_env"
install = ["environments/my_env"]
[resources]
gpus = "H100:8"
"""


def write_user_project(root: Path, extra_toml: str = "") -> Path:
    """A user's folder outside the checkout: `r.toml` and a local environment package."""
    env = root / "environments" / "my_env"
    env.mkdir(parents=True)
    (env / "pyproject.toml").write_text('[project]\nname = "my-env"\nversion = "0"\n')
    (env / "my_env.py").write_text("def load_environment(**kw):\n    return None\n")
    (root / "r.toml").write_text(USER_RECIPE + extra_toml)
    return root
