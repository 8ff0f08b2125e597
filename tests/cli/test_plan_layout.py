"""`vft plan` reads well at 80 columns: topology first, each command whole, one cost line."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from vft.cli import text
from vft.cli.plan_cmd import cost_line, plan_lines
from vft.core.plan import Cost, Plan
from vft.core.resources import recipe_file, recipe_names
from vft.launch import prepare
from vft.testing import write_user_project

EXAMPLES = recipe_names()


def _plan(recipe: Path, backend: str, *overrides: str) -> tuple[Plan, list[tuple[str, str]]]:
    prepared = prepare(recipe, overrides, backend, check_paths=False)
    return prepared.plan, prepared.backend.describe(prepared.plan)


def _commands(lines: list[str], plan: Plan) -> dict[str, list[str]]:
    """Each process's section, its wrapped lines joined back and split as a shell would."""
    out = {}
    for p in plan.processes:
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{p.name} (node "))
        body = []
        for line in lines[start + 1 :]:
            if not line.startswith("  "):
                break
            body.append(line.strip().removesuffix("\\"))
        out[p.name] = shlex.split(" ".join(body))
    return out


@pytest.mark.parametrize("backend", ["local", "modal"])
@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_fits_80_columns(example: str, backend: str) -> None:
    recipe = recipe_file(example)
    plan, rows = _plan(recipe, backend)
    lines = plan_lines(plan, rows, 80)
    scripts = {line for _, value in rows if "\n" in value for line in value.splitlines()}
    too_wide = [line for line in lines if len(line) > 80 and line not in scripts]
    assert too_wide == []
    # the topology table comes before any command
    header = lines.index(next(x for x in lines if x.startswith("process ")))
    first_command = min(
        i for i, x in enumerate(lines) for p in plan.processes if x.startswith(f"{p.name} (node ")
    )
    assert header < first_command
    # wrapped between arguments only: the lines give back exactly the plan's argv
    commands = _commands(lines, plan)
    assert commands == {p.name: list(p.argv) for p in plan.processes}
    assert sum(line.startswith("cost:") for line in lines) == 1
    assert not any(line.startswith("$/h") for line in lines)


def test_modal_prices_in_one_line_saying_what_they_include() -> None:
    plan, rows = _plan(recipe_file("gsm8k"), "modal")
    assert "$/h" not in [label for label, _ in rows]  # the price is the planner's, not a row
    lines = plan_lines(plan, rows, 80)
    cost = " ".join(
        line.strip()
        for line in lines[next(i for i, x in enumerate(lines) if x.startswith("cost:")) :][:2]
    )
    assert "2 x A100-80GB $5.00 + CPU/memory $0.89, at modal's prices" in cost
    assert "$5.00/h" not in cost.split("(")[0]  # the headline is the whole price, not GPUs


def test_cost_line_says_what_it_counts() -> None:
    plan, _ = _plan(recipe_file("gsm8k"), "modal", "resources.step_seconds=36")
    line = cost_line(plan)
    assert line.startswith("cost: $5.89/h (2 x A100-80GB $5.00 + CPU/memory $0.89, at modal's")
    assert line.endswith(f"~${5.89 * plan.cost.hours:.2f} for {plan.cost.hours:g} h")
    bare = replace(plan, cost=Cost(5.0, plan.cost.hours, None))  # a backend billing GPUs only
    assert cost_line(bare).startswith("cost: $5.00/h (2 x A100-80GB at catalog prices, GPUs only)")


@pytest.mark.slow  # the first plan of the user's environment loads it (verifiers): ~8 s
def test_plan_at_80_columns_as_a_user_runs_it(tmp_path: Path) -> None:
    project = write_user_project(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "vft", "plan", "r.toml", "-b", "modal"],
        capture_output=True,
        text=True,
        cwd=project,
        env={**_env(), "COLUMNS": "80"},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), [x for x in lines if len(x) > 80]
    assert "\x1b[" not in out.stdout  # no colour codes in a pipe
    # the JSON as a script reads it: no rich is imported to print it
    code = (
        "import sys\nfrom vft.cli import main\n"
        "try:\n    main(['plan', 'r.toml', '-b', 'modal', '--json'])\n"
        "finally:\n"
        "    print('RICH=' + ','.join(m for m in sys.modules if m.startswith('rich')), "
        "file=sys.stderr)\n"
    )
    as_json = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=project,
        env=_env(),
        timeout=60,
    )
    assert as_json.stderr.strip().endswith("RICH="), as_json.stderr
    plan = Plan.from_dict(json.loads(as_json.stdout))
    assert _commands(lines, plan) == {p.name: list(p.argv) for p in plan.processes}


def _env() -> dict[str, str]:
    return dict(os.environ)


def test_wrap_breaks_at_spaces_only() -> None:
    words = ["aaaa", "bbbbbbbb", "cc", "dddddddddddddddddddddd", "e"]
    lines = text.wrap(" ".join(words), 12, indent="  ")
    assert [w for line in lines for w in line.split()] == words
    assert all(len(line) <= 12 for line in lines if len(line.split()) > 1)
    assert "dddddddddddddddddddddd" in [line.strip() for line in lines]  # whole, on its own


def test_wrap_breaks_a_long_list_after_a_slash() -> None:
    lines = text.wrap("gpus A100-40GB/A100-80GB/A10G/H100/H200, max 8", 20)
    assert (
        "".join(line.replace(" ", "") for line in lines)
        == "gpusA100-40GB/A100-80GB/A10G/H100/H200,max8"
    )
    assert all(len(line) <= 20 for line in lines)


def test_command_keeps_an_option_with_its_value() -> None:
    argv = ["vllm", "serve", "m", "--port", "8000", "--enforce-eager", "--x", "a b"]
    lines = text.command(argv, 24)
    assert all(len(line) <= 24 for line in lines)
    assert any("--port 8000" in line for line in lines)
    joined = " ".join(line.strip().removesuffix("\\") for line in lines)
    assert shlex.split(joined) == argv


def test_table_shrinks_the_widest_column_to_fit() -> None:
    rows = [["a", "one two three four five six seven eight nine ten"], ["bb", "x"]]
    lines = text.table(("k", "value"), rows, 30)
    assert all(len(line) <= 30 for line in lines)
    assert lines[0].startswith("k  │ value")
    cells = " ".join(line.split("│")[1].strip() for line in lines[2:])
    assert cells.split() == [*rows[0][1].split(), "x"]


@pytest.mark.parametrize("example", ["smoke-server", "gsm8k"])
def test_header_breaks_between_phrases(example: str) -> None:
    """The summary's lines break between its comma-separated phrases, never inside one."""
    plan, rows = _plan(recipe_file(example), "local")
    lines = plan_lines(plan, rows, 80)
    header = lines[: lines.index("")]
    assert len(header) > 1  # long enough to wrap at 80 columns
    assert all(line.endswith(",") for line in header[:-1])
    assert "trainer 1 process(es)" in " ".join(line.strip() for line in header)


def test_memory_is_said_once_in_the_table() -> None:
    """The table gives each process's memory and the GPU's size; no line repeats them."""
    plan, rows = _plan(recipe_file("gsm8k"), "local")
    lines = plan_lines(plan, rows, 80)
    assert lines[lines.index("") + 1].split("│")[-1].strip() == "memory/GPU (of 80 GiB)"
    assert not any(line.startswith("memory/GPU:") for line in lines)
    assert sum("13.2 GiB" in line for line in lines) == 1
