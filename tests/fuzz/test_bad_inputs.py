"""Each bad input once known to crash `vft plan` or to be accepted, and its one line now."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.recipes import assert_one_line, nested
from tests.reliability import case
from vft.core.errors import PlanError, RecipeError, UserError
from vft.core.gpus import parse_gpus
from vft.core.recipe import load_recipe
from vft.launch import prepare

HEAD = 'name = "bad"\n[model]\nname = "vft-tiny"\n[resources]\ngpus = "cpu"\n'
#: last, so that a test's extra lines are [trainer] keys
TRAINER = "[trainer]\nper_device_train_batch_size = 4\nnum_generations = 4\n"
SMOKE_ENV = '[environment]\nid = "vft_smoke"\n'


def refused(
    tmp_path: Path,
    extra: str = "",
    sets: tuple[str, ...] = (),
    *,
    env: str = SMOKE_ENV,
    check_paths: bool = False,
) -> UserError:
    """Plan the recipe (`extra` in [trainer]) with `sets`; the one-line UserError it raises."""
    case()
    recipe = tmp_path / "r.toml"
    recipe.write_text(HEAD + env + TRAINER + extra, encoding="utf-8")
    with pytest.raises(UserError) as info:
        prepare(recipe, sets, "local", check_paths=check_paths)
    assert_one_line(info.value)
    return info.value


# -- nesting that overflowed tomllib's or pydantic's recursion -------------------------------


@pytest.mark.parametrize("kind", ["array", "table"])
def test_deep_nesting_in_a_recipe(tmp_path: Path, kind: str) -> None:
    err = refused(tmp_path, f"x = {nested(5000, kind)}\n")
    assert "nested too deeply (at most 32 levels)" in err.line()


def test_nesting_pydantic_cannot_dump(tmp_path: Path) -> None:
    err = refused(tmp_path, env=SMOKE_ENV + f"args = {{x = {nested(300, 'array')}}}\n")
    assert err.line().startswith("environment.args.x[0]")
    assert "nested more than 32" in err.line()


def test_deep_nesting_in_an_override(tmp_path: Path) -> None:
    err = refused(tmp_path, sets=(f"environment.args.x={nested(5000, 'array')}",))
    assert "nested too deeply" in err.line()


# -- environment ids that are not module names --------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "fragment"),
    [
        ("foo.bar", "use an environment's module name"),
        ("../../x", "use an environment's module name"),
        (" ", "use an environment's module name"),
        ("a" * 5000, "use an environment's module name"),
        ("os", "standard-library module"),
        ("json", "standard-library module"),
        ("class", "would import Python's or vft's own code"),
    ],
    ids=["dotted", "parent-path", "blank", "very-long", "os", "json", "keyword"],
)
def test_environment_id_must_be_a_module_name(tmp_path: Path, env_id: str, fragment: str) -> None:
    err = refused(tmp_path, env=f'[environment]\nid = "{env_id}"\n', check_paths=True)
    assert isinstance(err, RecipeError) and err.key == "environment.id"
    assert fragment in err.line()
    assert len(err.line()) < 400


@pytest.mark.parametrize("env_id", ["gsm8k", "reverse-text", "vft_smoke", "owner/wordle@0.1"])
def test_environment_ids_that_stay_allowed(env_id: str) -> None:
    from tests.planning import recipe_dict
    from vft.core.recipe import recipe_from_dict

    assert recipe_from_dict(recipe_dict(environment={"id": env_id})).environment.id == env_id


def test_a_very_long_run_name_is_shown_short(tmp_path: Path) -> None:
    err = refused(tmp_path, sets=("name=" + "a" * 5000,))
    assert err.line().startswith("name: 'aaaa")
    assert "at most 63 characters" in err.line() and len(err.line()) < 300


# -- numbers: booleans, inf and nan, non-ASCII digits, absurd counts ----------------------------


@pytest.mark.parametrize(
    "key",
    [
        "trainer.max_steps",
        "trainer.per_device_train_batch_size",
        "trainer.save_steps",
        "trainer.seed",
        "resources.nodes",
        "inference.port",
    ],
)
def test_a_boolean_is_not_a_number(tmp_path: Path, key: str) -> None:
    err = refused(tmp_path, sets=(f"{key}=true",))
    assert err.line().startswith(f"{key}: true is not allowed: use a whole number (allowed: ")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("trainer.learning_rate", "inf"),
        ("trainer.learning_rate", "nan"),
        ("trainer.beta", "inf"),
        ("trainer.temperature", "inf"),
        ("run.ready_timeout_s", "inf"),
        ("run.stop_grace_s", "inf"),
        ("inference.weight_sync_timeout_s", "inf"),
        ("resources.step_seconds", "inf"),
    ],
)
def test_floats_must_be_finite(tmp_path: Path, key: str, value: str) -> None:
    err = refused(tmp_path, sets=(f"{key}={value}",))
    assert err.line().startswith(f"{key}: {value} is not allowed: use a finite number")


def test_a_boolean_flag_is_true_or_false(tmp_path: Path) -> None:
    err = refused(tmp_path, sets=("inference.enforce_eager=1",))
    assert err.line() == "inference.enforce_eager: 1 is not allowed: use true or false"


def test_a_negative_seed(tmp_path: Path) -> None:
    err = refused(tmp_path, sets=("trainer.seed=-1",))
    assert err.line() == "trainer.seed: -1 is not allowed: it must be from 0 to 4294967295"


@pytest.mark.parametrize(
    "count", ["\u0663", "\uff13", "\u0968"], ids=["arabic", "fullwidth", "devanagari"]
)
def test_gpu_count_digits_are_ascii(count: str) -> None:
    case()
    with pytest.raises(RecipeError, match=r"is not a whole number \(ASCII digits\)"):
        parse_gpus(f"H100:{count}")


@pytest.mark.parametrize("count", ["65", "9999", "9" * 30, "9" * 5000])
def test_gpu_count_is_bounded(tmp_path: Path, count: str) -> None:
    err = refused(tmp_path, sets=(f"resources.gpus=H100:{count}",))
    assert "at most 64 GPUs per node; for more, set resources.nodes" in err.line()
    assert len(err.line()) < 300


def test_batch_dimensions_are_bounded(tmp_path: Path) -> None:
    err = refused(tmp_path, sets=("trainer.gradient_accumulation_steps=100000000",))
    assert "it must be from 1 to 4096" in err.line()


# -- paths: missing checkpoints, names no file system takes ---------------------------------------


def test_resume_from_a_checkpoint_that_is_not_there(tmp_path: Path) -> None:
    err = refused(
        tmp_path, sets=("trainer.resume_from_checkpoint=ckpts/checkpoint-9",), check_paths=True
    )
    assert isinstance(err, PlanError)
    assert err.line().startswith(
        f"trainer.resume_from_checkpoint: '{tmp_path}/ckpts/checkpoint-9' is not a checkpoint folder"
    )


def test_resume_latest_and_an_existing_checkpoint_plan(tmp_path: Path) -> None:
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "trainer_state.json").write_text("{}")
    recipe = tmp_path / "r.toml"
    recipe.write_text(HEAD + SMOKE_ENV + TRAINER)
    for value in ("latest", "ck"):
        sets = (f"trainer.resume_from_checkpoint={value}",)
        prepare(recipe, sets, "local", check_paths=True)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("a\\u0000b", "cannot contain a NUL character"),
        ("a" * 300, "each part of a path is at most 255 bytes"),
        ("a/" * 3000, "a path is at most 4096 characters"),
    ],
    ids=["nul", "long-name", "long-path"],
)
def test_paths_no_file_system_takes(tmp_path: Path, value: str, fragment: str) -> None:
    err = refused(tmp_path, f'script = "{value}"\n', check_paths=True)
    assert err.line().startswith("trainer.script: ") and fragment in err.line()


def test_a_recipe_path_too_long_for_the_file_system(tmp_path: Path) -> None:
    case()
    with pytest.raises(RecipeError, match="cannot be read"):
        load_recipe(tmp_path / ("r" * 300 + ".toml"))


def test_environment_args_must_be_json(tmp_path: Path) -> None:
    err = refused(tmp_path, env=SMOKE_ENV + "args = {when = 1979-05-27}\n", check_paths=True)
    assert err.line().startswith("environment.args.when: '1979-05-27' is not allowed")


def test_a_key_with_a_line_break_stays_on_one_line(tmp_path: Path) -> None:
    err = refused(tmp_path, '"max\\nsteps" = 1\n')
    assert err.line().startswith("trainer.'max\\nsteps': unknown key")


# -- accelerate / DeepSpeed configs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        (
            "deepspeed_config:\n  zero_stage: 7\n",
            "deepspeed_config.zero_stage is 7; allowed: 0, 1, 2 or 3",
        ),
        ("deepspeed_config:\n  zero_stage: true\n", "deepspeed_config.zero_stage is true; allowed"),
        ("deepspeed_config:\n  offload_optimizer_device: gpu\n", "allowed: none, cpu or nvme"),
        ("mixed_precision: fp64\n", "mixed_precision is 'fp64'; allowed: 'no', fp16, bf16 or fp8"),
        ("deepspeed_config: 3\n", "deepspeed_config is 3; it must be a mapping"),
        ("- a\n- b\n", "is not an accelerate config"),
        ("deepspeed_config: [\n", "not valid YAML"),
    ],
    ids=["stage-7", "stage-bool", "offload", "precision", "not-mapping", "list", "unparsable"],
)
def test_accelerate_config_is_checked(tmp_path: Path, config: str, fragment: str) -> None:
    (tmp_path / "my.yaml").write_text(config)
    err = refused(tmp_path, 'deepspeed = "my.yaml"\n')
    assert err.line().startswith("trainer.deepspeed: 'my.yaml'")
    assert fragment in err.line()


def test_a_valid_accelerate_config_plans(tmp_path: Path) -> None:
    from vft.core.resources import accelerate_templates

    text = accelerate_templates()["zero2"].format(
        offload_optimizer_device="cpu", mixed_precision="'no'", use_cpu="true"
    )
    (tmp_path / "my.yaml").write_text(text)
    recipe = tmp_path / "r.toml"
    recipe.write_text(HEAD + SMOKE_ENV + TRAINER + 'deepspeed = "my.yaml"\n')
    assert prepare(recipe, (), "local", check_paths=False).plan.trainer.zero_stage == 2
