"""Recipe loading, overrides and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.planning import recipe_dict
from vft.core.errors import RecipeError
from vft.core.gpus import parse_gpus
from vft.core.recipe.schema import load_recipe, parse_override, recipe_from_dict

EXAMPLES = sorted(Path("examples/recipes").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_load(path):
    recipe = load_recipe(path)
    assert recipe.name


def test_tutorial_examples_are_all_there():
    names = {p.stem for p in EXAMPLES}
    assert {
        "gsm8k",
        "wordle-1.7b",
        "wordle-4b",
        "math-python-1.7b",
        "reverse-text",
        "smoke",
    } <= names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("H100:8", "H100:8"),
        ("h100", "H100:1"),
        ("A100-80GB:2", "A100-80GB:2"),
        ("A100:80GB:2", "A100-80GB:2"),
        ("a100-40gb:4", "A100-40GB:4"),
        ("cpu", "cpu"),
        ("CPU", "cpu"),
    ],
)
def test_gpu_strings(text, expected):
    assert str(parse_gpus(text)) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("A100:2", "ambiguous: write one of A100-40GB, A100-80GB"),
        ("X200:2", "unknown GPU type 'X200'"),
        ("H100:eight", "count 'eight'"),
        ("H100:0", "at least 1"),
    ],
)
def test_gpu_string_errors_name_the_token(text, fragment):
    with pytest.raises(RecipeError, match=fragment):
        parse_gpus(text)


def test_unknown_key_suggests_the_right_one():
    with pytest.raises(RecipeError) as info:
        recipe_from_dict(recipe_dict(trainer={"learnig_rate": 1e-5}))
    assert info.value.line() == "trainer.learnig_rate: unknown key (did you mean 'learning_rate'?)"


def test_unknown_top_level_table():
    with pytest.raises(RecipeError, match="unknown key"):
        recipe_from_dict(recipe_dict(trainr={"max_steps": 1}))


def test_missing_required_key():
    data = recipe_dict()
    del data["model"]
    with pytest.raises(RecipeError, match="^model: is required"):
        recipe_from_dict(data)


def test_bad_value_names_key_and_value():
    with pytest.raises(RecipeError) as info:
        recipe_from_dict(recipe_dict(inference={"gpu_memory_utilization": 1.5}))
    assert info.value.line().startswith("inference.gpu_memory_utilization: 1.5 is not allowed")


@pytest.mark.parametrize(
    ("item", "path", "value"),
    [
        ("trainer.max_steps=10", ["trainer", "max_steps"], 10),
        ("trainer.learning_rate=1e-5", ["trainer", "learning_rate"], 1e-5),
        ("inference.enforce_eager=false", ["inference", "enforce_eager"], False),
        ('trainer.args=["--size", "1.7B"]', ["trainer", "args"], ["--size", "1.7B"]),
        ("model.name=willcb/Qwen3-1.7B", ["model", "name"], "willcb/Qwen3-1.7B"),
        ("resources.gpus=H100:8", ["resources", "gpus"], "H100:8"),
    ],
)
def test_overrides_are_typed(item, path, value):
    assert parse_override(item) == (path, value)


def test_override_applies(tmp_path):
    src = Path("examples/recipes/gsm8k.toml").read_text()
    (tmp_path / "r.toml").write_text(src)
    recipe = load_recipe(tmp_path / "r.toml", ["trainer.max_steps=10", "logging.wandb_project=x"])
    assert recipe.trainer.max_steps == 10
    assert recipe.logging.wandb_project == "x"


def test_bad_override_is_one_line():
    with pytest.raises(RecipeError, match="not KEY.PATH=VALUE"):
        parse_override("max_steps")


def test_invalid_toml(tmp_path):
    (tmp_path / "r.toml").write_text("name = \n")
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(tmp_path / "r.toml")


def test_paths_start_from_the_recipes_folder_not_the_working_directory(tmp_path, monkeypatch):
    """As in compose files: the same recipe means the same from any working directory."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "r.toml").write_text(
        'name = "p"\n[model]\nname = "m"\n[environment]\nid = "gsm8k"\n'
        'install = ["envs/e"]\n[resources]\ngpus = "cpu"\n'
        '[trainer]\nscript = "train.py"\nresume_from_checkpoint = "ckpts/checkpoint-4"\n'
        '[run]\noutput_dir = "runs"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    r = load_recipe(Path("..") / "project" / "r.toml")
    assert r.base_dir == folder
    assert r.run.output_dir == str(folder / "runs")
    assert r.trainer.resume_from_checkpoint == str(folder / "ckpts" / "checkpoint-4")
    assert r.path(r.trainer.script) == folder / "train.py"
    assert r.environment.install == ["envs/e"]  # as written; resolved where it is used
    assert r.path("/abs/x") == Path("/abs/x")
    # --set values are paths of the recipe too; "latest" and the default are not paths
    r = load_recipe(
        folder / "r.toml", ["run.output_dir=o", "trainer.resume_from_checkpoint=latest"]
    )
    assert r.run.output_dir == str(folder / "o")
    assert r.trainer.resume_from_checkpoint == "latest"
    (folder / "d.toml").write_text(
        'name = "p"\n[model]\nname = "m"\n[environment]\nid = "gsm8k"\n[resources]\ngpus = "cpu"\n'
    )
    assert load_recipe(folder / "d.toml").run.output_dir == "outputs"
    # a recipe built in memory starts from the working directory
    assert recipe_from_dict(recipe_dict()).base_dir == elsewhere


def test_a_recipe_that_is_not_utf8_is_one_line(tmp_path):
    bad = tmp_path / "r.toml"
    bad.write_bytes(b'name = "\xff\xfe"\n')
    with pytest.raises(RecipeError, match="not UTF-8 text"):
        load_recipe(bad)


def test_a_misspelt_required_key_says_what_it_was_meant_to_be():
    data = recipe_dict()
    data["nmae"] = data.pop("name")
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(data)
    assert err.value.line() == "name: is required; 'nmae' is not a key: did you mean 'name'?"
    data = recipe_dict()
    data["modle"] = data.pop("model")
    with pytest.raises(RecipeError, match="model: is required; 'modle' is not a key"):
        recipe_from_dict(data)
