"""Property tests: any recipe, `--set` or file content plans or is refused in one line.

Hostile input is generated (wrong types, huge numbers, inf and nan, odd unicode, deep
nesting, random bytes, random TOML-ish text, random overrides) and pushed through
`load_recipe` and `vft.launch.prepare` in-process; the only exception allowed out is a
`UserError` whose line has no line break. A few cases go through `vft plan` for real.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.recipes import (
    BASE,
    FUZZ,
    KEYS,
    LEAVES,
    assert_one_line,
    nested,
    overrides,
    tables,
    toml_texts,
    values,
    with_value,
    write_recipe,
)
from tests.reliability import case
from vft.core.errors import UserError
from vft.core.recipe import load_recipe
from vft.launch import prepare
from vft.testing import run_vft


def plans_or_refuses(action: Callable[[], Any]) -> None:
    """Run one example: it plans, or says no in one line; count it either way."""
    case()
    try:
        action()
    except UserError as exc:
        assert_one_line(exc)


def in_folder(write: Callable[[Path], Path], then: Callable[[Path], Any]) -> None:
    """A fresh folder per example (hypothesis runs many examples in one test)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp))
        plans_or_refuses(lambda: then(path))


def plan(path: Path, sets: tuple[str, ...] = (), check_paths: bool = False) -> Any:
    return prepare(path, sets, "local", check_paths=check_paths)


@FUZZ
@given(key=st.sampled_from(LEAVES) | st.sampled_from(KEYS), value=values)
def test_any_value_at_any_key(key: str, value: Any) -> None:
    in_folder(lambda d: write_recipe(d, with_value(key, value)), plan)


@FUZZ
@given(data=tables)
def test_any_structure_as_a_recipe(data: dict[str, Any]) -> None:
    in_folder(lambda d: write_recipe(d, {**BASE, **data}), plan)


@FUZZ
@given(body=toml_texts)
def test_any_toml_ish_text(body: str) -> None:
    def write(d: Path) -> Path:
        (d / "r.toml").write_text(body, encoding="utf-8")
        return d / "r.toml"

    in_folder(write, load_recipe)


@FUZZ
@given(blob=st.binary(max_size=400), keep=st.booleans())
def test_any_bytes(blob: bytes, keep: bool) -> None:
    def write(d: Path) -> Path:
        prefix = b'name = "x"\n[model]\nname = "m"\n' if keep else b""
        (d / "r.toml").write_bytes(prefix + blob)
        return d / "r.toml"

    in_folder(write, plan)


@FUZZ
@given(
    key=st.sampled_from([*KEYS, "environment.args.x", "x"]),
    depth=st.integers(1, 5000),
    kind=st.sampled_from(["array", "table"]),
    how=st.sampled_from(["file", "set"]),
)
def test_deep_nesting(key: str, depth: int, kind: str, how: str) -> None:
    value = nested(depth, kind)

    def write(d: Path) -> Path:
        path = write_recipe(d, BASE)
        if how == "file":
            *table, leaf = key.split(".")
            header = f"[{'.'.join(table)}]\n" if table else ""
            path.write_text(path.read_text() + f"{header}{leaf} = {value}\n")
        return path

    sets = (f"{key}={value}",) if how == "set" else ()
    in_folder(write, lambda p: plan(p, sets))


@FUZZ
@given(sets=st.lists(overrides, max_size=3))
def test_any_overrides(sets: list[str]) -> None:
    in_folder(lambda d: write_recipe(d, BASE), lambda p: plan(p, tuple(sets)))


@FUZZ
@given(
    key=st.sampled_from(
        [
            "trainer.script",
            "trainer.deepspeed",
            "trainer.resume_from_checkpoint",
            "environment.install",
            "run.output_dir",
        ]
    ),
    value=values,
)
def test_paths_are_checked_without_a_crash(key: str, value: Any) -> None:
    """With the path checks on: files that are not there, names no file system takes."""
    if key == "environment.install" and not isinstance(value, list):
        value = [value]
    in_folder(lambda d: write_recipe(d, with_value(key, value)), lambda p: plan(p, (), True))


@FUZZ
@given(config=st.one_of(toml_texts, values.map(str), st.sampled_from(["{", "- 1", "a: [", ""])))
def test_any_accelerate_config(config: str) -> None:
    def write(d: Path) -> Path:
        (d / "ds.yaml").write_text(config, encoding="utf-8")
        return write_recipe(d, with_value("trainer.deepspeed", "ds.yaml"))

    in_folder(write, plan)


CLI_CASES = {
    "deep arrays": f"x = {nested(5000, 'array')}\n",
    "deep tables": f"[environment.args]\nx = {nested(3000, 'table')}\n",
    "bool step count": "[trainer]\nmax_steps = true\n",
    "inf learning rate": "[trainer]\nlearning_rate = inf\n",
    "arabic digit gpus": '[resources]\ngpus = "H100:\u0663"\n',
    "stdlib environment": '[environment]\nid = "os"\n',
    "huge gpu count": '[resources]\ngpus = "H100:' + "9" * 5000 + '"\n',
}


@pytest.mark.parametrize("extra", CLI_CASES.values(), ids=list(CLI_CASES))
def test_vft_plan_says_one_line_and_exits_2(tmp_path: Path, extra: str) -> None:
    """The same through a real `vft plan`: exit 2, one line on stderr, no traceback."""
    case()
    base = 'name = "fuzz"\n[model]\nname = "vft-tiny"\n'
    recipe = tmp_path / "r.toml"
    lines = [base]
    sections = {"environment": 'id = "vft_smoke"', "resources": 'gpus = "cpu"'}
    for table, line in sections.items():
        if f"[{table}]" not in extra:
            lines.append(f"[{table}]\n{line}\n")
    recipe.write_text("".join(lines) + extra, encoding="utf-8")
    done = run_vft("plan", recipe, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr[-2000:]
