"""The README stays true: its recipe reference is the model's, its test command is CI's."""

from __future__ import annotations

from pathlib import Path

from vft.core.recipe.doc import reference_table

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_recipe_reference_is_generated_from_the_model():
    start = README.index("<!-- recipe-reference:start -->") + len("<!-- recipe-reference:start -->")
    end = README.index("<!-- recipe-reference:end -->")
    assert README[start:end].strip() == reference_table().strip(), (
        "README recipe reference is stale: regenerate with python -m vft.core.recipe.doc --write"
    )


def test_quick_start_has_the_two_commands_and_ci_runs_the_test_one():
    block = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    run, test = commands
    assert run.startswith("pip install torch==2.13.0 ") and run.endswith("&& vft run")
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()


def test_every_example_recipe_is_in_the_tutorial_table():
    for recipe in (ROOT / "examples" / "recipes").glob("*.toml"):
        assert f"examples/recipes/{recipe.name}" in README, recipe.name
