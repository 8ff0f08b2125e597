"""The architecture stays as docs/architecture.md draws it, and the Plan stays a contract."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from vft.core.plan import Plan, json_schema
from vft.launch import prepare

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "plans"


def test_every_package_the_map_names_exists():
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"\b((?:vft|plugins)/[\w/.-]+)", text))
    assert len(named) >= 10
    for path in named:
        assert (ROOT / path.rstrip("/")).exists(), f"docs/architecture.md names {path}"


def test_no_code_outside_planning_reads_the_recipe_back_from_a_plan():
    """`plan.recipe` is a record; what a consumer needs is a typed field of the Plan."""
    offenders = []
    sources = [*(ROOT / "vft").rglob("*.py"), *(ROOT / "plugins").rglob("vft_*/*.py")]
    for path in sources:
        if "planning" in path.parts or "build" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "recipe":
                owner = ast.unparse(node.value)
                if "plan" in owner.lower():
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {owner}.recipe")
            if isinstance(node, ast.Subscript) and ast.unparse(node.slice) == "'recipe'":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []


def test_the_published_json_schema_is_current():
    published = json.loads((ROOT / "docs" / "plan.schema.json").read_text())
    assert published == json_schema(), "regenerate: python -m vft.core.plan > docs/plan.schema.json"


def _contained(old, new, path="plan"):
    """Every key and value of `old` is in `new` (keys may be added, none removed or changed)."""
    if isinstance(old, dict):
        assert isinstance(new, dict), path
        for key, value in old.items():
            assert key in new, f"{path}.{key} was removed"
            _contained(value, new[key], f"{path}.{key}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), path
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _contained(a, b, f"{path}[{i}]")
    else:
        assert old == new, f"{path}: {old!r} became {new!r}"


@pytest.mark.parametrize("golden", sorted(GOLDEN.glob("*.json")), ids=lambda p: p.stem)
def test_example_plans_keep_every_key_of_the_contract(golden, monkeypatch):
    """Plan JSON v1 of every example recipe: as recorded, plus added keys only.

    Regenerate after a deliberate change to an example recipe or the planner's output:
    `vft plan examples/recipes/R.toml -b B --json > tests/fixtures/plans/R-B.json`, then
    delete `run.workdir` (the recipe's folder on this machine) from the file."""
    recipe, backend = golden.stem.rsplit("-", 1)
    monkeypatch.chdir(ROOT)
    plan = prepare(ROOT / "examples" / "recipes" / f"{recipe}.toml", (), backend).plan
    data = json.loads(plan.to_json())
    recorded = json.loads(golden.read_text())
    # display only, and they depend on the machine (whether the environment loads here)
    recorded.pop("warnings")
    recorded["trainer"]["environment"].pop("summary")
    assert "workdir" not in recorded["run"]
    assert data["run"]["workdir"] == str(ROOT / "examples" / "recipes")
    _contained(recorded, data)
    assert Plan.from_dict(data) == plan
