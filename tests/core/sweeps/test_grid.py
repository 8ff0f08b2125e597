"""Sweep grids: `--grid` values as TOML, keys checked against the recipe, expansion, names."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vft.core.errors import RecipeError
from vft.core.recipe import NAME_PATTERN, parse_override
from vft.core.sweeps.grid import (
    MAX_POINTS,
    Axis,
    axes_of,
    check_override_conflicts,
    expand,
    parse_grid_option,
    toml_value,
)
from vft.core.sweeps.names import column_headers, point_names


@pytest.mark.parametrize(
    ("item", "values"),
    [
        ("trainer.learning_rate=1e-6,3e-6", (1e-6, 3e-6)),
        ("trainer.beta=0,0.04", (0, 0.04)),
        ("trainer.bf16=true,false", (True, False)),
        ("trainer.deepspeed=zero2,zero3", ("zero2", "zero3")),  # bare strings
        ('trainer.deepspeed="zero2", "zero3"', ("zero2", "zero3")),
        ('environment.args.sep="a,b","c"', ("a,b", "c")),  # a comma inside quotes
        ("trainer.args=[1, 2],[3]", ([1, 2], [3])),
        ("trainer.max_steps= 5 ", (5,)),
        ("resources.gpus=H100:8,A100-80GB:4", ("H100:8", "A100-80GB:4")),
        ("trainer.lr_scheduler=linear,2", ("linear", 2)),  # each item parsed on its own
    ],
)
def test_grid_values_are_toml_like_set(item, values):
    axis = parse_grid_option(item)
    assert axis.values == values
    assert [type(v) for v in axis.values] == [type(v) for v in values]


@pytest.mark.parametrize(
    ("item", "line"),
    [
        ("trainer.beta", "--grid: 'trainer.beta' is not KEY.PATH=V1,V2,..."),
        ("trainer.beta=", "--grid: 'trainer.beta=' is not KEY.PATH=V1,V2,..."),
        ("=1,2", "--grid: '=1,2' is not KEY.PATH=V1,V2,..."),
        ("trainer.deepspeed=zero2,,zero3", "--grid: trainer.deepspeed: an empty value"),
    ],
)
def test_a_malformed_grid_option_is_one_line(item, line):
    with pytest.raises(RecipeError) as exc:
        parse_grid_option(item)
    assert exc.value.line().startswith(line)


@pytest.mark.parametrize(
    ("item", "line"),
    [
        (
            "trainer.learnig_rate=1e-6",
            "--grid: 'trainer.learnig_rate' is not a recipe key "
            "(did you mean 'trainer.learning_rate'?)",
        ),
        (
            "learning_rate=1e-6",
            "--grid: 'learning_rate' is not a recipe key (did you mean 'trainer.learning_rate'?)",
        ),
        (
            "trainer.bta=0",
            "--grid: 'trainer.bta' is not a recipe key (did you mean 'trainer.beta'?)",
        ),
        (
            "trainer.beta.x=0",
            "--grid: 'trainer.beta.x' is not a recipe key (did you mean 'trainer.beta'?)",
        ),
        ("trainer=1", "--grid: trainer is a table; sweep one of its keys"),
        ("name=a,b", "--grid: name cannot be swept: each point's run name is made from its values"),
        ("run.output_dir=a,b", "--grid: run.output_dir cannot be swept"),
        ("trainer.beta=0,0.0", "--grid: trainer.beta: the value 0.0 is given twice"),
    ],
)
def test_a_key_not_in_the_recipe_is_one_line_with_the_closest_key(item, line):
    with pytest.raises(RecipeError) as exc:
        axes_of({}, [item])
    assert exc.value.line().startswith(line)


def test_free_form_tables_take_any_key_below_them():
    axes = axes_of({}, ["environment.args.num_examples=8,16", "backend.modal.timeout_s=60"])
    assert [a.key for a in axes] == ["environment.args.num_examples", "backend.modal.timeout_s"]


def test_the_recipe_table_comes_first_and_grid_options_replace_its_keys():
    table = {"trainer.beta": [0, 0.04], "trainer.seed": [1, 2]}
    axes = axes_of(table, ["trainer.seed=7", "trainer.learning_rate=1e-6,3e-6"])
    assert axes == [
        Axis("trainer.beta", (0, 0.04)),
        Axis("trainer.seed", (7,)),
        Axis("trainer.learning_rate", (1e-6, 3e-6)),
    ]
    with pytest.raises(RecipeError, match=r"^sweep: 'trainer\.sed' is not a recipe key"):
        axes_of({"trainer.sed": [1]}, [])
    with pytest.raises(RecipeError, match="sweep: trainer.seed: no values to try"):
        axes_of({"trainer.seed": []}, [])
    with pytest.raises(RecipeError, match="trainer.seed is given twice"):
        axes_of({}, ["trainer.seed=1", "trainer.seed=2"])


def test_expand_varies_the_first_axis_slowest_and_makes_set_overrides():
    axes = [Axis("trainer.learning_rate", (1e-6, 3e-6)), Axis("trainer.beta", (0, 0.04))]
    points = expand(axes)
    assert [dict(p.values) for p in points] == [
        {"trainer.learning_rate": 1e-6, "trainer.beta": 0},
        {"trainer.learning_rate": 1e-6, "trainer.beta": 0.04},
        {"trainer.learning_rate": 3e-6, "trainer.beta": 0},
        {"trainer.learning_rate": 3e-6, "trainer.beta": 0.04},
    ]
    assert points[1].overrides() == ("trainer.learning_rate=1e-06", "trainer.beta=0.04")
    too_many = [Axis(f"trainer.k{i}", tuple(range(7))) for i in range(3)]
    with pytest.raises(
        RecipeError, match=f"7 x 7 x 7 = 343 points; a sweep has at most {MAX_POINTS}"
    ):
        expand(too_many)


def test_a_set_of_a_grid_key_is_refused():
    axes = [Axis("trainer.beta", (0, 1))]
    check_override_conflicts(axes, ["trainer.seed=1"])
    with pytest.raises(RecipeError, match="--set: trainer.beta is also a grid key"):
        check_override_conflicts(axes, ["trainer.beta=0.5"])


_SCALARS = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@given(_VALUES)
def test_toml_value_reads_back_as_the_same_value_through_set(value):
    _, parsed = parse_override(f"k={toml_value(value)}")
    assert parsed == value and type(parsed) is type(value)


def test_toml_value_of_infinities_and_nan():
    assert parse_override(f"k={toml_value(math.inf)}")[1] == math.inf
    assert parse_override(f"k={toml_value(-math.inf)}")[1] == -math.inf
    assert math.isnan(parse_override(f"k={toml_value(math.nan)}")[1])


# -- names --------------------------------------------------------------------------------


def _names(prefix: str, *axes: Axis) -> list[str]:
    return point_names(prefix, expand(list(axes)))


def test_names_say_the_values_in_short():
    names = _names(
        "smoke", Axis("trainer.learning_rate", (1e-6, 3e-6)), Axis("trainer.beta", (0, 0.04))
    )
    assert names == [
        "smoke-lr1e-06-beta0",
        "smoke-lr1e-06-beta0.04",
        "smoke-lr3e-06-beta0",
        "smoke-lr3e-06-beta0.04",
    ]
    assert _names("x", Axis("trainer.bf16", (True, False))) == ["x-bf16true", "x-bf16false"]
    assert _names("x", Axis("resources.gpus", ("H100:8",))) == ["x-gpusH100-8"]
    models = Axis("model.name", ("willcb/Qwen3-0.6B", "/ckpt/run/"))  # a hub id, a path
    assert _names("g", models) == ["g-Qwen3-0.6B", "g-run"]
    assert _names("x", Axis("trainer.max_steps", (10**20,)))[0] == "x-steps100000000000000000000"


def test_names_are_valid_unique_and_stable_when_values_clash_or_run_long():
    # "a b" and "a-b" read the same in a name: both get a digest of their values
    clash = _names("exp", Axis("environment.args.tag", ("a b", "a-b", "c")))
    assert clash[2] == "exp-tagc"
    assert clash[0] != clash[1] and clash[0].startswith("exp-taga-b-")
    long = _names("e" * 60, Axis("trainer.seed", (1, 2)))
    assert all(len(n) <= 63 for n in long) and long[0] != long[1]
    weird = _names("exp", Axis("environment.args.x", ("+++", "ü", "[1]", 1e20)))
    for names in (clash, long, weird):
        assert all(re.match(NAME_PATTERN, n) for n in names), names
        assert len(set(names)) == len(names)
    assert clash == _names("exp", Axis("environment.args.tag", ("a b", "a-b", "c")))


def test_keys_that_end_alike_are_told_apart():
    names = _names("x", Axis("environment.args.seed", (1,)), Axis("trainer.seed", (2,)))
    assert names == ["x-environment_args_seed1-trainer_seed2"]
    assert column_headers(["trainer.beta", "environment.args.seed", "trainer.seed"]) == {
        "trainer.beta": "beta",
        "environment.args.seed": "environment.args.seed",
        "trainer.seed": "trainer.seed",
    }
