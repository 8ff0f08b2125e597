"""`vft envs` as users read it: the id whole at 80 columns, the API named as `vft plan`
names it, the listing's fixture rows marked, and `vft plan`'s per-environment facts cache
reused, so that a second listing loads nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sites import SPAWNS
from vft.cli.envs_cmd import LISTING_ARGS
from vft.core.planning.environments import BUILTIN_ENVIRONMENTS

pytest.importorskip("verifiers")


def vft_envs(cache: Path, *argv: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "vft", "envs", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env=env,
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache filled by one first listing (each environment described once)."""
    root = tmp_path_factory.mktemp("cache")
    vft_envs(root, "--json")
    return root


def test_the_table_keeps_every_id_whole_and_says_classic(cache):
    out = vft_envs(cache).stdout
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in lines if "│" in line]
    rows = {row[0]: row for row in cells}
    for env_id in BUILTIN_ENVIRONMENTS:
        assert env_id in rows, out  # whole, on one line: no "…", no wrap
    assert "…" not in out and "legacy" not in out
    assert rows["gsm8k"][3:] == ["classic", "single", "no", "6*"]
    assert rows["wordle"][3:] == ["classic", "multi", "no", "20"]
    assert rows["reverse_text"][3] == "v1"
    header = " ".join(line for line in lines if "┃" in line)
    assert "tool" in header and "calls" in header
    note = " ".join(out.split())
    assert '* gsm8k: listed with environment.args = {"dataset": "fixture"}' in note
    assert "tool calls: tools the model calls through the chat API" in note


def test_a_second_listing_reads_the_facts_vft_plan_caches(cache, monkeypatch):
    """The first listing wrote each environment's facts where `vft plan` keeps them (same
    key); a second listing reads them back instead of loading the environments: an edited
    record shows up, and `vft plan`'s own lookup sees the same record."""
    from vft import launch
    from vft.core.planning import facts_cache
    from vft.core.recipe.schema import recipe_from_dict

    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    files = {
        env_id: facts_cache.cache_file(env_id, args, ())
        for env_id, args in {e: LISTING_ARGS.get(e, {}) for e in BUILTIN_ENVIRONMENTS}.items()
    }
    assert all(f.is_file() for f in files.values())
    record = json.loads(files["wordle"].read_text())
    files["wordle"].write_text(json.dumps({**record, "train_size": 4242}))

    listed = {e["id"]: e for e in json.loads(vft_envs(cache, "--json").stdout)}
    assert listed["wordle"]["facts"]["train_size"] == 4242
    assert listed["gsm8k"]["described_with_args"] == {"dataset": "fixture"}
    r = recipe_from_dict(
        {
            "name": "r",
            "model": {"name": "m"},
            "environment": {"id": "wordle"},
            "resources": {"gpus": "cpu"},
        }
    )
    facts, note = launch.environment_facts(r)
    assert note is None and facts is not None and facts.train_size == 4242


def test_a_cached_listing_loads_no_environment(cache):
    """Every environment's facts are cached: `vft envs` starts no describe subprocess."""
    done = subprocess.run(
        [sys.executable, "-c", SPAWNS, "envs"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
    )
    spawns = [line for line in done.stderr.splitlines() if line.startswith("SPAWN")]
    assert not [line for line in spawns if "vft.train.envs.describe" in line], spawns
    assert "continuation_quality" in done.stdout
