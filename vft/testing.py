"""pytest fixtures and helpers for testing vft plugins (backends, engines) against real vft.

Enabling it: with vft installed, pytest loads this module by itself (it is a pytest plugin
through the entry point `[project.entry-points.pytest11] vft = "vft.testing"`), so a
plugin's tests just name the fixtures. Where plugin autoloading is off
(PYTEST_DISABLE_PLUGIN_AUTOLOAD=1), pass `-p vft.testing` or put
`pytest_plugins = ["vft.testing"]` in your top-level conftest.py (only then: registering it
both ways, by the entry point and by name, is an error). `-p no:vft` disables it.

Fixtures:

- `tiny_recipe`: the path of a small valid CPU recipe (a tiny random-weight model, the
  built-in `vft_smoke` environment), written into the test's tmp_path.
- `make_recipe`: `make_recipe(**sections)` -> the path of another such recipe, with
  tables merged in (`resources={"nodes": 2}` updates `[resources]`), other keys replaced.
- `plan_for`: `plan_for(recipe, backend="local", overrides=(), **options)` -> the Plan,
  through the same public path as `vft plan` and `vft run` (`vft.launch.prepare`);
  `recipe` is a path or a dict of tables.
- `node_harness`: `node_harness(plan)` -> `(exit_code, attempt)`: node 0 of `plan` run on
  this machine by vft's own node supervisor, in a fresh attempt folder under tmp_path.
- `no_leftovers`: a token; give it to your processes' environment as `TOKEN_VAR` and the
  test fails if any of them is still alive after it (`processes_with(token)` finds them).

Helpers: `run_vft(*args)` runs `python -m vft ...` as a user does; `free_port()`;
`wait_gone(pids)`; `write_user_project(folder)`, a user's folder with a recipe and a local
environment package.
"""

from __future__ import annotations

import copy
import itertools
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from vft.core.plan import Plan, Process

if TYPE_CHECKING:
    from vft.core.runs import Attempt

__all__ = [
    "TINY_RECIPE",
    "TOKEN_VAR",
    "USER_RECIPE",
    "free_port",
    "make_recipe",
    "no_leftovers",
    "node_harness",
    "plan_for",
    "plan_of",
    "processes_with",
    "run_vft",
    "tiny_recipe",
    "wait_gone",
    "write_recipe",
    "write_user_project",
]

TOKEN_VAR = "VFT_TEST_TOKEN"

# Plans and, run for real, trains in seconds on a CPU (a random-weight model built offline).
TINY_RECIPE: dict[str, Any] = {
    "name": "tiny",
    "model": {"name": "vft-tiny", "params_b": 0.0001},
    "environment": {"id": "vft_smoke", "args": {"num_examples": 8}},
    "resources": {"gpus": "cpu"},
    "trainer": {
        "per_device_train_batch_size": 2,
        "num_generations": 2,
        "gradient_accumulation_steps": 1,
        "max_steps": 1,
        "max_tokens": 8,
    },
}

#: a minimal classic Verifiers environment: one question, one exact-answer reward
USER_ENVIRONMENT = """\
import verifiers as vf
from datasets import Dataset


def exact(completion, answer, **kw):
    text = completion[-1]["content"] if isinstance(completion, list) else completion
    return float(str(text).strip() == answer)


def load_environment(**kw):
    rows = [{"question": "2 + 2 = ?", "answer": "4"}] * 4
    return vf.SingleTurnEnv(
        dataset=Dataset.from_list(rows), rubric=vf.Rubric(funcs=[exact], weights=[1.0]), **kw
    )
"""

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


# -- helpers ------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
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


def run_vft(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`python -m vft ARGS` as a user runs it; `env` is added to this process's environment.

    COLUMNS is wide so that no table folds a long argv or script line in the output.
    """
    return subprocess.run(
        [sys.executable, "-m", "vft", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "1000", **(env or {})},
        timeout=timeout,
    )


def write_user_project(root: Path, extra_toml: str = "") -> Path:
    """A user's folder outside the checkout: `r.toml` and a local environment package."""
    env = root / "environments" / "my_env"
    env.mkdir(parents=True)
    (env / "pyproject.toml").write_text('[project]\nname = "my-env"\nversion = "0"\n')
    (env / "my_env.py").write_text(USER_ENVIRONMENT)
    (root / "r.toml").write_text(USER_RECIPE + extra_toml)
    return root


def merged(base: Mapping[str, Any], **sections: Any) -> dict[str, Any]:
    """`base` with `sections` merged in: a dict updates that table, anything else replaces."""
    data = copy.deepcopy(dict(base))
    for key, value in sections.items():
        if isinstance(value, Mapping) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return data


def write_recipe(path: Path, data: Mapping[str, Any]) -> Path:
    """Write a recipe given as a dict of tables to `path` (TOML); returns `path`."""
    import tomli_w

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(dict(data)))
    return path


# -- fixtures -----------------------------------------------------------------------------


def plan_of(
    *processes: Process,
    name: str = "t",
    nodes: int = 1,
    inference: Mapping[str, Any] | None = None,
    ports: Mapping[str, int] | None = None,
    **run: Any,
) -> Plan:
    """A hand-made Plan around `processes` (for supervisor and backend tests that run
    fixture programs, not a trainer); `run` overrides the run settings."""
    from vft.core.plan import (
        Cost,
        EnvironmentPlan,
        InferencePlan,
        Ports,
        RunSettings,
        TrainerPlan,
        TrainerStart,
        Training,
    )

    settings: dict[str, Any] = {
        "output_dir": "outputs",
        "trainer_start": TrainerStart.OVERLAP,
        "ready_timeout_s": 20.0,
        "stop_grace_s": 2.0,
        **run,
    }
    settings["trainer_start"] = TrainerStart(settings["trainer_start"])
    inf = {"engine": None, "port": None, "data_parallel": 0, "tensor_parallel": 0}
    training = Training(
        learning_rate=1e-6,
        per_device_train_batch_size=2,
        num_generations=2,
        gradient_accumulation_steps=1,
        max_steps=1,
        max_tokens=8,
        temperature=1.0,
        beta=0.0,
        save_steps=1,
        logging_steps=1,
        seed=0,
    )
    all_ports = {
        "inference": 8000,
        "weight_sync": 51216,
        "rendezvous": 29500,
        "dp_rpc": 13345,
        "control": 29400,
        **(ports or {}),
    }
    return Plan(
        name=name,
        backend="local",
        gpu_type=None,
        gpus_per_node=0,
        nodes=nodes,
        inference=InferencePlan(**{**inf, **(inference or {})}),
        trainer=TrainerPlan(
            num_processes=1,
            nodes=(0,),
            zero_stage=3,
            offload_optimizer=False,
            entry="vft.train",
            rendezvous_port=all_ports["rendezvous"],
            model="vft-tiny",
            environment=EnvironmentPlan("vft_smoke"),
            training=training,
        ),
        processes=tuple(processes),
        files={},
        memory={"fits": True},
        cost=Cost(0.0),
        run=RunSettings(**settings),
        ports=Ports(**all_ports),
    )


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
def make_recipe(tmp_path: Path) -> Callable[..., Path]:
    """`make_recipe(**sections)` -> the path of TINY_RECIPE with `sections` merged in.

    Its run folders go under the test's tmp_path unless `run={"output_dir": ...}` says.
    """
    count = itertools.count(1)

    def make(**sections: Any) -> Path:
        data = merged(TINY_RECIPE, run={"output_dir": str(tmp_path / "outputs")})
        data = merged(data, **sections)
        return write_recipe(tmp_path / "recipes" / f"recipe-{next(count)}.toml", data)

    return make


@pytest.fixture
def tiny_recipe(make_recipe: Callable[..., Path]) -> Path:
    """The path of a small valid CPU recipe (TINY_RECIPE) in the test's tmp_path."""
    return make_recipe()


@pytest.fixture
def plan_for(tmp_path: Path) -> Callable[..., Plan]:
    """`plan_for(recipe, backend="local", overrides=(), **options)` -> a Plan.

    `recipe` is a recipe file's path or a dict of tables (written to tmp_path first);
    `overrides` are `--set` strings; `options` go to `vft.launch.prepare`.
    """
    count = itertools.count(1)

    def plan(
        recipe: str | Path | Mapping[str, Any],
        backend: str = "local",
        overrides: Sequence[str] = (),
        **options: Any,
    ) -> Plan:
        from vft.launch import prepare

        if isinstance(recipe, Mapping):
            recipe = write_recipe(tmp_path / "plan_for" / f"recipe-{next(count)}.toml", recipe)
        return prepare(recipe, tuple(overrides), backend, **options).plan

    return plan


@pytest.fixture
def node_harness(tmp_path: Path) -> Callable[..., tuple[int, Attempt]]:
    """`node_harness(plan, output_dir=None, backend=None)` -> `(exit_code, attempt)`.

    Writes a new attempt folder (with plan.json) under `output_dir` (default:
    tmp_path/outputs) and runs node 0 of `plan` on this machine (address 127.0.0.1) with
    vft's node supervisor, as `vft agent` does on a backend's node; returns when it ends.
    """

    def run(
        plan: Plan, output_dir: str | Path | None = None, backend: str | None = None
    ) -> tuple[int, Attempt]:
        from vft.core.node.supervisor import run_node
        from vft.core.plan import NodeContext
        from vft.core.runs import run_folder

        out = tmp_path / "outputs" if output_dir is None else Path(output_dir)
        attempt = run_folder(out, plan.name).new_attempt(plan, backend or plan.backend)
        ctx = NodeContext.here(0, ("127.0.0.1",), str(attempt.path))
        return run_node(plan, attempt, ctx), attempt

    return run
