"""The cached index of installed distributions, through real interpreters.

Each test writes distributions the way pip leaves them (a `*.dist-info` folder with
METADATA and entry_points.txt, and the plugin's module) into a folder that a fresh
Python gets on its PYTHONPATH, with the cache under the test's own XDG_CACHE_HOME.
A folder is aged after each change (`settle`), as if the install were a minute old:
one changed in the last seconds is never trusted, which another test checks.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from importlib import metadata
from pathlib import Path

import pytest

from vft.core import installed as index

PLUGIN = """
from vft.plugin import Backend, Capabilities, hookimpl

class {cls}(Backend):
    name = {name!r}
    capabilities = Capabilities()

@hookimpl
def vft_register_backends(register):
    register({cls})
"""

# the registry as `vft backends` builds it, and whether importlib.metadata was needed
PROBE = """
import json, sys
from vft.core.plugins.registry import registry
reg = registry()
print(json.dumps({
    "backends": {n: [r.package, r.version] for n, r in reg.backends.items()},
    "errors": reg.errors,
    "metadata": "importlib.metadata" in sys.modules,
}))
"""


def add_plugin(site: Path, project: str, name: str, version: str = "1.0") -> None:
    """Install `project` (a backend called `name`) into `site` as pip would."""
    module = project.replace("-", "_")
    (site / f"{module}.py").write_text(PLUGIN.format(cls=f"{name.title()}Backend", name=name))
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[vft]\n{name} = {module}\n")
    (info / "top_level.txt").write_text(f"{module}\n")
    (info / "RECORD").write_text(f"{module}.py,,\n{info.name}/METADATA,,\n")


def uninstall(site: Path, module: str) -> None:
    """What pip uninstall leaves: neither the module nor its `*.dist-info` folder."""
    for path in site.glob(f"{module}[.-]*"):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def settle(site: Path, age_s: float) -> None:
    """Date the folder `age_s` seconds back: a change that long ago has settled."""
    stamp = time.time_ns() - int(age_s * 1e9)
    os.utime(site, ns=(stamp, stamp))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    return folder


@functools.cache
def child_path() -> tuple[Path, ...]:
    """The folders a fresh Python here has on sys.path, besides the test's own."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    script = "import json, sys; print(json.dumps(sys.path[1:]))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    return tuple(Path(p) for p in json.loads(out.stdout) if Path(p).is_dir())


def wait_until_settled(limit_s: float = 30) -> None:
    """A test that pip-installed into this environment just before leaves site-packages
    unsettled for a moment, and a child would rightly walk instead of using the cache."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        newest = max(p.stat().st_mtime_ns for p in child_path())
        wait_s = (newest + index.UNSETTLED_NS - time.time_ns()) / 1e9
        if wait_s < 0:
            return
        time.sleep(min(wait_s + 0.05, 1.0))


def run_probe(code: str, site: Path, cache: Path, **extra: str) -> dict:
    """Run `code` in a fresh Python with `site` on its path and `cache` as the cache home;
    its stdout is JSON."""
    wait_until_settled()
    env = {k: v for k, v in os.environ.items() if k not in ("VFT_NO_CACHE", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(cache), **extra)
    done = subprocess.run(  # cwd: `-c` puts it on sys.path, and it must hold still
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=site,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def probe(site: Path, cache: Path, **extra: str) -> dict:
    """Build the registry in a fresh Python with `site` on its path; only its plugins load."""
    plugins = {"VFT_PLUGINS": "vft-acme,vft-bolt", "VFT_DISABLE_PLUGIN_AUTOLOAD": ""}
    return run_probe(PROBE, site, cache, **{**plugins, **extra})


def plugins(result: dict) -> dict[str, list[str]]:
    return {k: v for k, v in result["backends"].items() if k in ("acme", "bolt")}


def cache_files(cache: Path) -> list[Path]:
    folder = cache / "vft" / "installed"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def test_installs_and_removals_are_seen_and_a_hit_reads_no_metadata(site, tmp_path):
    cache = tmp_path / "cache"
    add_plugin(site, "vft-acme", "acme", "2.3")
    settle(site, 60)
    first = probe(site, cache)
    assert plugins(first) == {"acme": ["vft-acme", "2.3"]}
    assert first["metadata"] is True  # a miss walks the distributions
    assert len(cache_files(cache)) == 1

    hit = probe(site, cache)
    assert plugins(hit) == {"acme": ["vft-acme", "2.3"]}
    assert hit["metadata"] is False, "a cache hit must not import importlib.metadata"

    add_plugin(site, "vft-bolt", "bolt", "0.4")  # a second install changes the folder
    settle(site, 30)
    added = probe(site, cache)
    assert plugins(added) == {"acme": ["vft-acme", "2.3"], "bolt": ["vft-bolt", "0.4"]}
    assert added["metadata"] is True

    uninstall(site, "vft_bolt")
    settle(site, 10)
    removed = probe(site, cache)
    assert plugins(removed) == {"acme": ["vft-acme", "2.3"]}
    assert probe(site, cache)["metadata"] is False
    assert len(cache_files(cache)) == 1  # one file per interpreter and path, rewritten


def test_a_folder_changed_just_now_is_walked_and_not_kept(site, tmp_path):
    cache = tmp_path / "cache"
    add_plugin(site, "vft-acme", "acme")
    for _ in range(2):
        os.utime(site)  # the folder's time is now: it may change again within the tick
        result = probe(site, cache)
        assert plugins(result) == {"acme": ["vft-acme", "1.0"]}
        assert result["metadata"] is True
    assert cache_files(cache) == []


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"not json at all",
        b'vft-installed 00000000\n{"key": [], "distributions": [], "entry_points": []}',
    ],
    ids=["empty", "garbage", "bad-checksum"],
)
def test_a_damaged_cache_file_is_walked_past_and_rewritten(site, tmp_path, damage):
    cache = tmp_path / "cache"
    add_plugin(site, "vft-acme", "acme")
    settle(site, 60)
    probe(site, cache)
    (path,) = cache_files(cache)
    path.write_bytes(damage)
    result = probe(site, cache)
    assert plugins(result) == {"acme": ["vft-acme", "1.0"]}
    assert result["metadata"] is True
    assert path.read_bytes().startswith(b"vft-installed ")  # rewritten whole
    assert probe(site, cache)["metadata"] is False


def test_a_cache_from_another_state_of_the_folder_is_not_believed(site, tmp_path):
    """A well-formed file whose key is not this one (copied, or left by an older state)."""
    cache = tmp_path / "cache"
    add_plugin(site, "vft-acme", "acme")
    settle(site, 60)
    probe(site, cache)
    (path,) = cache_files(cache)
    saved = path.read_bytes()
    add_plugin(site, "vft-bolt", "bolt")
    settle(site, 30)
    probe(site, cache)
    path.write_bytes(saved)  # the index from before vft-bolt was installed
    assert set(plugins(probe(site, cache))) == {"acme", "bolt"}


def test_an_unwritable_cache_folder_still_gives_the_right_answer(site, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")  # XDG_CACHE_HOME under a file: no folder can be made there
    add_plugin(site, "vft-acme", "acme")
    settle(site, 60)
    for _ in range(2):
        assert plugins(probe(site, blocker / "cache")) == {"acme": ["vft-acme", "1.0"]}


def test_no_cache_switch_neither_reads_nor_writes(site, tmp_path):
    cache = tmp_path / "cache"
    add_plugin(site, "vft-acme", "acme")
    settle(site, 60)
    result = probe(site, cache, VFT_NO_CACHE="1")
    assert plugins(result) == {"acme": ["vft-acme", "1.0"]}
    assert cache_files(cache) == []
    probe(site, cache)
    assert probe(site, cache, VFT_NO_CACHE="1")["metadata"] is True


def test_the_index_agrees_with_importlib_metadata():
    """This environment's own distributions: names, versions and `vft` entry points."""
    walked = index._walk()
    expected = [
        (ep.name, ep.value, ep.dist.name if ep.dist else "", ep.dist.version if ep.dist else "")
        for ep in metadata.entry_points(group="vft")
    ]
    assert [(e.name, e.value, e.dist, e.version) for e in walked.select("vft")] == expected
    assert [(d.name, d.version) for d in walked.distributions] == [
        ((d.metadata["Name"] or "").strip(), d.version) for d in metadata.distributions()
    ]
    for name in ("pluggy", "click", "vft", "no-such-distribution-here"):
        try:
            version: str | None = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = None
        assert walked.version(name) == version


def test_an_entry_point_loads_its_module_attribute(tmp_path, monkeypatch):
    (tmp_path / "vftfake_ep.py").write_text(textwrap.dedent("class Outer:\n  class Inner: ...\n"))
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = index.EntryPoint("x", "vftfake_ep:Outer.Inner", "vft", "d", "1")
    assert ep.load().__qualname__ == "Outer.Inner"
    with pytest.raises(ValueError, match="not 'module:attr'"):
        index.EntryPoint("x", "not a module", "vft", "d", "1").load()
    sys.modules.pop("vftfake_ep", None)


ENVS_PROBE = """
import json, sys
from vft.core.planning.environments import environment_source, installed_environments
from vft.core.recipe.schema import recipe_from_dict

def source(env_id):
    r = {"name": "r", "model": {"name": "m"}, "environment": {"id": env_id}}
    return environment_source(recipe_from_dict({**r, "resources": {"gpus": "cpu"}}))

print(json.dumps({
    "installed": [[e.id, e.version] for e in installed_environments() if e.id.startswith("vfx")],
    "tiny": source("vfx_tiny"),
    "other": source("vfx-other"),
}))
"""


def add_environment(site: Path, project: str, version: str) -> None:
    """A Verifiers environment as pip installs it: depends on verifiers, one module."""
    module = project.replace("-", "_")
    (site / f"{module}.py").write_text(
        "def load_environment(**kwargs):\n    raise NotImplementedError\n"
    )
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n"
        "Requires-Dist: verifiers>=0.3.1\n"
    )
    (info / "RECORD").write_text(f"{module}.py,,\n{info.name}/METADATA,,\n")


def test_installed_environments_follow_installs_and_removals(site, tmp_path):
    cache = tmp_path / "cache"

    def envs() -> dict:
        return run_probe(ENVS_PROBE, site, cache)

    add_environment(site, "vfx-tiny", "0.1.0")
    settle(site, 60)
    assert envs() == {
        "installed": [["vfx_tiny", "0.1.0"]],
        "tiny": "installed (0.1.0)",
        "other": "missing",
    }
    assert len(cache_files(cache)) == 1
    add_environment(site, "vfx-other", "2.0")
    settle(site, 30)
    assert envs() == {
        "installed": [["vfx_other", "2.0"], ["vfx_tiny", "0.1.0"]],
        "tiny": "installed (0.1.0)",
        "other": "installed (2.0)",
    }
    uninstall(site, "vfx_tiny")
    settle(site, 10)
    assert envs() == {
        "installed": [["vfx_other", "2.0"]],
        "tiny": "missing",
        "other": "installed (2.0)",
    }


def test_the_cache_folder_is_absolute_or_none(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert index.cache_dir() == tmp_path / "xdg" / "vft" / "installed"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as XDG says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert index.cache_dir() == tmp_path / "home" / ".cache" / "vft" / "installed"


def test_old_and_surplus_cache_files_are_pruned_on_a_write(site, tmp_path):
    cache = tmp_path / "cache"
    folder = cache / "vft" / "installed"
    folder.mkdir(parents=True)
    now = time.time()
    for n in range(index.KEEP + 8):  # other folders' files, one a minute older each
        (folder / f"{n:08x}.json").write_text("{}")
        os.utime(folder / f"{n:08x}.json", (now - 60 * (n + 1),) * 2)
    ancient = folder / "ancient.json"
    ancient.write_text("{}")
    os.utime(ancient, (now - index.STALE_S - 60,) * 2)
    add_plugin(site, "vft-acme", "acme")
    settle(site, 60)
    probe(site, cache)
    left = {p.name for p in folder.iterdir()}
    assert len(left) == index.KEEP and "ancient.json" not in left
    assert f"{index.KEEP + 7:08x}.json" not in left and "00000000.json" in left
    assert probe(site, cache)["metadata"] is False  # the new file is among those kept
