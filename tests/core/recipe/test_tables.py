"""vft's own table validator (vft.core.recipe.tables): strictness, one-line errors,
validated assignment, dumping, the JSON Schema, and the pydantic names it answers."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Literal

import pytest

from tests.planning import recipe_dict
from vft.core.errors import RecipeError
from vft.core.recipe import Inference, Recipe, Run, Trainer, load_recipe, recipe_from_dict
from vft.core.recipe.tables import FieldError, Table, field

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "examples" / "recipes").glob("*.toml"))


def refused(**sections: Any) -> str:
    with pytest.raises(RecipeError) as info:
        recipe_from_dict(recipe_dict(**sections))
    return info.value.line()


@pytest.mark.parametrize(
    ("sections", "line"),
    [
        (
            {"trainer": {"max_steps": True}},
            "trainer.max_steps: true is not allowed: use a whole number (allowed: 1 to 2147483647)",
        ),
        (
            {"trainer": {"max_steps": 2.0}},
            "trainer.max_steps: 2.0 is not allowed: use a whole number (allowed: 1 to 2147483647)",
        ),
        (
            {"trainer": {"max_steps": 10**4000}},
            "trainer.max_steps: a number of about 4001 digits is not allowed: "
            "it must be from 1 to 2147483647",
        ),
        (
            {"inference": {"enforce_eager": "no"}},
            "inference.enforce_eager: 'no' is not allowed: use true or false",
        ),
        (
            {"trainer": {"learning_rate": math.nan}},
            "trainer.learning_rate: nan is not allowed: use a finite number, not inf or nan "
            "(allowed: greater than 0, at most 10)",
        ),
        (
            {"model": {"params_b": 10**4000}},
            "model.params_b: a number of about 4001 digits is not allowed: use a number "
            "(allowed: greater than 0, at most 100000)",
        ),
        (
            {"inference": {"weight_sync": "fast"}},
            "inference.weight_sync: 'fast' is not allowed: Input should be 'auto', 'nccl' or "
            "'files'",
        ),
        (
            {"trainer": {"args": ["--a", 2]}},
            "trainer.args[1]: 2 is not allowed: use a string (in quotes)",
        ),
        (
            {"environment": {"id": "gsm8k", "install": ["ok", "b\x00"]}},
            "environment.install[1]: 'b\\x00' is not allowed: a path cannot contain a NUL "
            "character (\\u0000)",
        ),
        (
            {"trainer": {"max_stepz": 3}},
            "trainer.max_stepz: unknown key (did you mean 'max_steps'?)",
        ),
        (
            {"logging": {"zzz": 1}},
            "logging.zzz: unknown key (allowed: wandb_project, wandb_entity, tensorboard)",
        ),
        ({"trainer": [1]}, "trainer: [1] is not allowed: use a table"),
        (
            {"name": "bad name"},
            "name: 'bad name' is not allowed: use letters, digits, '.', '_' or '-' (at most 63 "
            "characters, starting alphanumeric)",
        ),
        (
            {"environment": {"id": ""}},
            "environment.id: '' is not allowed: String should have at least 1 character",
        ),
        (
            {"environment": {"id": "os"}},
            "environment.id: 'os' is not allowed: it is a Python standard-library module, not an "
            "environment; name your environment's package (e.g. 'gsm8k', 'my-env')",
        ),
        # the first fault in declaration order is the one reported, unknown keys last
        (
            {"trainer": {"zzz": 1, "max_steps": True}},
            "trainer.max_steps: true is not allowed: use a whole number (allowed: 1 to 2147483647)",
        ),
    ],
)
def test_one_line_errors(sections: dict[str, Any], line: str) -> None:
    assert refused(**sections) == line


def test_a_missing_key_beside_its_misspelling_says_so() -> None:
    data = recipe_dict()
    data["environment"] = {"idd": "gsm8k"}
    with pytest.raises(RecipeError) as info:
        recipe_from_dict(data)
    assert (
        info.value.line() == "environment.id: is required; 'idd' is not a key: did you mean 'id'?"
    )


def test_a_flattened_sweep_key_shows_its_value() -> None:
    """`[sweep] trainer.beta = 3` is flattened to `trainer.beta` first; the error shows 3
    (the pydantic version could not find the value and said None)."""
    line = refused(sweep={"trainer": {"beta": 3}})
    assert line == "sweep.'trainer.beta': 3 is not allowed: use an array ([...])"


def test_accepted_values_are_converted_as_declared() -> None:
    recipe = recipe_from_dict(recipe_dict(trainer={"learning_rate": 1, "temperature": 0.5}))
    assert recipe.trainer.learning_rate == 1.0 and type(recipe.trainer.learning_rate) is float
    assert type(recipe.inference.weight_sync_timeout_s) is float  # its default is written 300
    assert recipe.run == Run() and recipe.logging.tensorboard is False  # absent: defaults
    assert recipe.sweep == {}
    nested = recipe_from_dict(recipe_dict(sweep={"trainer": {"beta": [0, 0.1]}, "x.y": [1]}))
    assert nested.sweep == {"trainer.beta": [0, 0.1], "x.y": [1]}


def test_fields_set_names_what_was_given() -> None:
    recipe = recipe_from_dict(recipe_dict(inference={"gpu_memory_utilization": 0.5}))
    assert recipe.inference.model_fields_set == {"gpu_memory_utilization"}
    assert "run" not in recipe.model_fields_set
    recipe.inference.port = 9000
    assert recipe.inference.model_fields_set == {"gpu_memory_utilization", "port"}


def test_assignment_is_validated_like_loading(tmp_path: Path) -> None:
    recipe = load_recipe(ROOT / "examples" / "recipes" / "gsm8k.toml")
    recipe.trainer.max_steps = 5
    assert recipe.trainer.max_steps == 5
    with pytest.raises(FieldError, match=r"^max_steps: true is not allowed: use a whole number"):
        recipe.trainer.max_steps = True
    with pytest.raises(FieldError, match=r"^max_steps: 0 is not allowed: it must be from 1 to"):
        recipe.trainer.max_steps = 0
    with pytest.raises(FieldError, match=r"^max_stepz: unknown key"):
        recipe.trainer.max_stepz = 5  # type: ignore[attr-defined]
    with pytest.raises(FieldError, match="NUL"):
        recipe.run.output_dir = "a\x00b"
    assert recipe.trainer.max_steps == 5
    # load_recipe's own assignment: run.output_dir made absolute against the file's folder
    (tmp_path / "r.toml").write_text(
        (ROOT / "examples" / "recipes" / "gsm8k.toml").read_text() + '\n[run]\noutput_dir = "o"\n'
    )
    assert load_recipe(tmp_path / "r.toml").run.output_dir == str(tmp_path.resolve() / "o")


def test_model_dump_json_is_plain_json() -> None:
    data = recipe_dict(backend={"x": {"when": __import__("datetime").date(2024, 1, 2)}})
    data["backend"]["x"]["big"] = math.inf
    dumped = recipe_from_dict(data).model_dump(mode="json")
    assert dumped["backend"] == {"x": {"when": "2024-01-02", "big": None}}
    assert dumped["inference"]["weight_sync_timeout_s"] == 300.0
    assert list(dumped) == list(Recipe.model_fields)
    assert json.loads(json.dumps(dumped)) == dumped
    # the data round-trips: validating the dump gives the same recipe
    again = recipe_from_dict(copy.deepcopy(dumped))
    assert again.model_dump(mode="json") == dumped


def test_model_validate_takes_an_instance_or_data() -> None:
    trainer = Trainer(max_steps=3)
    assert Trainer.model_validate(trainer) is trainer
    assert Trainer.model_validate({"max_steps": 3}) == trainer
    with pytest.raises(FieldError, match=r"^max_steps: 'x' is not allowed"):
        Trainer(max_steps="x")
    assert Inference(extra_args=["--a"]).extra_args == ["--a"]


def test_model_fields_answer_what_the_docs_and_sweeps_read() -> None:
    field_ = Run.model_fields["stop_grace_s"]
    assert field_.default == 10 and field_.annotation is float
    assert field_.description == "SIGTERM to SIGKILL grace period."
    assert Recipe.model_fields["trainer"].annotation is Trainer
    assert Recipe.model_fields["name"].is_required()
    assert Recipe.model_fields["backend"].get_default(call_default_factory=True) == {}
    assert str(Inference.model_fields["colocate"].annotation) == "bool | None"


def test_json_schema_describes_and_validates_the_recipe() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = Recipe.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in EXAMPLES:
        data = load_recipe(path).model_dump(mode="json")
        assert not list(validator.iter_errors(data)), path.name
    trainer = schema["$defs"]["Trainer"]
    assert trainer["additionalProperties"] is False
    steps = trainer["properties"]["max_steps"]
    assert steps == {
        "default": 200,
        "description": "Optimizer steps to train.",
        "maximum": 2147483647,
        "minimum": 1,
        "title": "Max Steps",
        "type": "integer",
    }
    assert trainer["properties"]["lr_scheduler"]["enum"] == ["linear", "constant", "cosine"]
    assert schema["required"] == ["name", "model", "environment", "resources"]
    bad = recipe_dict(trainer={"max_steps": 0, "typo": 1})
    assert {e.validator for e in validator.iter_errors(bad)} >= {"minimum"}


class Example(Table):
    """A table of every kind the validator knows."""

    count: int = field(1, ge=0, le=9)
    ratio: float | None = field(None, gt=0)
    mode: Literal["a", "b"] = field("a")
    tags: list[str] = field(default_factory=list, check=lambda t: t.lower())
    extra: dict[str, Any] = field(default_factory=dict)
    trainer: Trainer = field(default_factory=Trainer)


def test_a_new_table_gets_validation_dump_and_schema() -> None:
    ex = Example.model_validate({"tags": ["A", "B"], "ratio": 2, "trainer": {"seed": 3}})
    assert ex.tags == ["a", "b"] and ex.ratio == 2.0 and ex.trainer.seed == 3
    assert ex.model_dump()["trainer"]["seed"] == 3
    with pytest.raises(FieldError) as info:
        Example.model_validate({"count": 10})
    assert info.value.line() == "count: 10 is not allowed: it must be from 0 to 9"
    assert (
        info.value.under("outer", "x").line()
        == "outer.x.count: 10 is not allowed: it must be from 0 to 9"
    )
    with pytest.raises(FieldError, match=r"^mode: 'c' is not allowed: Input should be 'a' or 'b'"):
        Example(mode="c")
    schema = Example.model_json_schema()
    assert schema["description"] == "A table of every kind the validator knows."
    assert schema["properties"]["ratio"]["anyOf"] == [
        {"exclusiveMinimum": 0, "type": "number"},
        {"type": "null"},
    ]
    assert schema["properties"]["trainer"] == {"$ref": "#/$defs/Trainer"}
    assert "Trainer" in schema["$defs"]


def test_a_path_made_too_long_by_its_folder_is_one_line(tmp_path: Path) -> None:
    """load_recipe makes run.output_dir absolute by assignment, which is validated: a folder
    deep enough to push it past the path limit is a RecipeError naming the key."""
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        (ROOT / "examples" / "recipes" / "gsm8k.toml").read_text() + '\n[run]\noutput_dir = "o"\n'
    )
    deep = Path("/" + "/".join(["d" * 200] * 21))
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe, base_dir=deep)
    assert info.value.line().startswith("run.output_dir: '/ddd")
    assert info.value.line().endswith(
        "is not allowed: a path is at most 4096 characters; this one has 4223"
    )


def test_a_pattern_matches_the_whole_text_and_mutable_defaults_are_not_shared():
    """`name = "exp\\n"` is refused (a `$` alone would match before the newline), and a
    list default given as `[]` is each instance's own."""
    from vft.core.errors import RecipeError
    from vft.core.recipe import recipe_from_dict
    from vft.core.recipe.tables import Table, field

    base = {
        "name": "exp\n",
        "model": {"name": "vft-tiny"},
        "environment": {"id": "vft_smoke"},
        "resources": {"gpus": "cpu"},
    }
    with pytest.raises(RecipeError, match="^name: "):
        recipe_from_dict(base)

    class Opts(Table):
        xs: list[str] = field([])
        table: dict[str, int] = field({})

    one, two = Opts(), Opts.model_validate({})
    one.xs.append("leak")
    one.table["k"] = 1
    assert two.xs == [] and two.table == {} and Opts().xs == []


def test_a_constraint_its_type_cannot_have_is_refused_when_the_table_is_declared():
    """`min_length` on a list once applied to each item while the schema said nothing; a
    declaration the validator would misread is a TypeError at import, not a silent rule."""
    with pytest.raises(TypeError, match=r"Bad\.names: min_length/pattern constrain text"):

        class Bad(Table):
            names: list[str] = field([], min_length=1)

    with pytest.raises(TypeError, match=r"Worse\.label: ge/gt/le bound numbers"):

        class Worse(Table):
            label: str = field("x", ge=1)

    with pytest.raises(TypeError, match="a literal is text, an integer or a boolean"):

        class Odd(Table):
            ratio: Literal[0.5, 1.0] = field(0.5)


def test_a_literal_of_integers_takes_only_those_integers():
    class Shards(Table):
        count: Literal[1, 2, 4] = field(1)

    assert Shards.model_validate({"count": 4}).count == 4
    for bad in (3, "4", 4.0, True):
        with pytest.raises(FieldError, match=r"^count: .* Input should be 1, 2 or 4"):
            Shards.model_validate({"count": bad})
    assert Shards.model_json_schema()["properties"]["count"]["enum"] == [1, 2, 4]
    assert Shards.model_json_schema()["properties"]["count"]["type"] == "integer"


def test_a_number_or_boolean_in_quotes_says_to_drop_the_quotes() -> None:
    assert refused(trainer={"max_steps": "200"}) == (
        "trainer.max_steps: '200' is not allowed: that is text; write 200 without quotes"
    )
    assert refused(trainer={"learning_rate": " 1e-6"}) == (
        "trainer.learning_rate: ' 1e-6' is not allowed: that is text; write 1e-6 without quotes"
    )
    assert refused(inference={"enforce_eager": "true"}) == (
        "inference.enforce_eager: 'true' is not allowed: that is text; write true without quotes"
    )
    assert "use a whole number" in refused(trainer={"max_steps": "many"})
    assert "without quotes" not in refused(trainer={"learning_rate": "nan"})
