"""The packages under tests/plugins/, pip-installed, as a user meets them through the CLI.

vft-example and vft-testserver are installed into this environment; vft-dup and
vft-broken each into a folder of their own, put on PYTHONPATH only for the command that
needs them (so tests running alongside never see a broken or duplicate plugin). vft finds
all of them through their `vft` entry points; nothing here imports them by path.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugins.packages import install, install_target, plugin_env, vft

pytestmark = pytest.mark.timeout(300)

SMOKE = "examples/recipes/smoke.toml"
PLUGIN_MODULES = ("vft_example", "vft_testserver", "vft_dup", "vft_broken")


@pytest.fixture(scope="module")
def installed() -> dict[str, Path]:
    install("vft-example")
    install("vft-testserver")
    return {"dup": install_target("vft-dup"), "broken": install_target("vft-broken")}


def listing(env: dict[str, str]) -> dict:
    out = vft("backends", "--json", env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def by_name(rows: list[dict]) -> dict[str, dict]:
    return {r["name"]: r for r in rows}


def test_installed_plugins_appear_in_vft_backends(installed):
    data = listing(plugin_env())
    backends = by_name(data["backends"])
    assert backends["example"]["package"] == "vft-example"
    assert backends["example"]["version"] == "0.1.0"
    caps = backends["example"]["capabilities"]
    assert caps["multi_node"] is False and caps["gpu_types"] == [] and caps["cpu"] is True
    assert caps["limits"]["multi_node"] == "the example backend has one node: this machine"
    assert backends["example"]["options"] == ["poll_s", "python"]
    assert backends["local"]["package"] == "vft" and backends["modal"]["package"] == "vft"
    servers = by_name(data["inference_servers"])
    assert servers["testserver"] == {
        "name": "testserver",
        "package": "vft-testserver",
        "version": "0.1.0",
        "needs_gpu": False,
        "cpu": True,
        "health_path": "/health",
    }
    assert servers["vllm"]["package"] == "vft"

    table = vft("backends", env=plugin_env())
    assert table.returncode == 0, table.stderr
    assert re.search(
        r"example\s+│\s+vft-example\s+│\s+0\.1\.0\s+│\s+detach, outputs, cpu", table.stdout
    )
    assert re.search(
        r"testserver\s+│\s+vft-testserver\s+│\s+0\.1\.0\s+│\s+CPU$", table.stdout, re.M
    )


def test_autoload_off_shows_only_builtins(installed):
    data = listing(plugin_env(installed["broken"], VFT_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert set(by_name(data["backends"])) == {"local", "modal"}
    assert set(by_name(data["inference_servers"])) == {"vllm"}
    assert data["errors"] == []  # the broken plugin was never imported


@pytest.mark.parametrize(
    ("allow", "backends", "servers"),
    [
        ("vft-testserver", {"local", "modal"}, {"vllm", "testserver"}),
        ("example", {"local", "modal", "example"}, {"vllm"}),  # an entry-point name
        ("vft_example,vft-testserver", {"local", "modal", "example"}, {"vllm", "testserver"}),
    ],
)
def test_allowlist(installed, allow, backends, servers):
    data = listing(plugin_env(installed["broken"], installed["dup"], VFT_PLUGINS=allow))
    assert set(by_name(data["backends"])) == backends
    assert set(by_name(data["inference_servers"])) == servers
    assert data["errors"] == []  # vft-broken and vft-dup were not in the list: not loaded


def test_duplicate_name_is_an_error_naming_both_packages(installed):
    env = plugin_env(installed["dup"])
    message = (
        "backend name 'example' is registered twice: by vft-dup 0.2.0 and by vft-example 0.1.0; "
        "uninstall one, or limit plugins with VFT_PLUGINS"
    )
    data = listing(env)
    assert message in data["errors"]
    names = set(by_name(data["backends"]))
    assert "example" not in names and {"local", "modal", "dup-only"} <= names

    out = vft("plan", SMOKE, "--backend", "example", env=env)
    assert out.returncode == 2
    assert out.stderr == f"vft: error: --backend: {message}\n"

    assert vft("plan", SMOKE, "--backend", "local", env=env).returncode == 0
    assert vft("plan", SMOKE, "--backend", "dup-only", env=env).returncode == 0
    # choosing one package settles it
    chosen = plugin_env(installed["dup"], VFT_PLUGINS="vft-example")
    assert vft("plan", SMOKE, "--backend", "example", env=chosen).returncode == 0


def test_broken_plugin_is_reported_and_the_rest_works(installed):
    env = plugin_env(installed["broken"])
    out = vft("backends", env=env)
    assert out.returncode == 0
    assert re.search(r"example\s+│\s+vft-example", out.stdout)
    assert re.search(r"local\s+│\s+vft\s", out.stdout)
    # only vft-broken's lines: other plugins installed here are not this test's business
    errors = [
        line for line in out.stderr.splitlines() if line.startswith("plugin error: vft-broken")
    ]
    assert errors == [
        "plugin error: vft-broken: cannot load plugin 'importfail': "
        "ModuleNotFoundError: No module named 'vft_broken_missing_dependency'",
        "plugin error: vft-broken: vft_register_backend is not a vft hook "
        "(hooks: vft_register_backends, vft_register_inference_servers)",
        "plugin error: vft-broken: backend vft_broken.badclass.NotABackend "
        "is not a subclass of vft.plugin.Backend",
        "plugin error: vft-broken: backend vft_broken.badclass.BadName has name "
        "'Bad Name'; a name is lowercase letters, digits, '-' or '_' (at most 32, starting "
        "with a letter)",
        "plugin error: vft-broken: vft_register_inference_servers failed: "
        "RuntimeError: vft-broken's server hook failed on purpose",
    ]

    assert vft("--help", env=env).returncode == 0
    plan = vft("plan", SMOKE, "--backend", "example", "--json", env=env)
    assert plan.returncode == 0, plan.stderr
    unknown = vft("plan", SMOKE, "--backend", "importfail", env=env)
    assert unknown.returncode == 2
    [line] = unknown.stderr.splitlines()  # one line, no traceback
    assert line.startswith("vft: error: --backend: unknown backend 'importfail'; installed: ")
    assert "plugins that failed to load: vft-broken: cannot load plugin 'importfail'" in line


def test_help_imports_no_plugin(installed):
    """`vft --help` loads no plugin at all, broken or not: it cannot be slowed or broken by one."""
    env = plugin_env(installed["broken"], installed["dup"])
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vft", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "vft.cli" in imported  # the measurement works
    loaded = sorted(m for m in imported if m.split(".")[0] in (*PLUGIN_MODULES, "pluggy"))
    assert loaded == []
    assert "vft.core.plugins" not in imported and "vft.backends" not in imported


def test_plan_with_the_testserver_engine_on_cpu(installed):
    out = vft(
        "plan", SMOKE, "--backend", "example", "--json",
        "--set", "inference.engine=testserver",
        "--set", 'inference.extra_args=["--delay", "0.5"]',
        env=plugin_env(),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["backend"] == "example"
    roles = {p["role"]: p for p in plan["processes"]}
    server = roles["inference"]
    assert server["argv"] == [
        "python", "-m", "vft_testserver", "--host", "0.0.0.0", "--port", "8000",
        "--model", "vft-tiny", "--delay", "0.5",
    ]  # fmt: skip
    assert server["ready_url"] == "http://127.0.0.1:8000/health"
    assert server["env"]["PYTHONUNBUFFERED"] == "1"
    assert roles["trainer"]["env"]["VFT_INFERENCE_URL"] == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            ["resources.nodes=2"],
            "vft: error: resources.nodes: backend 'example' runs on one node only, got nodes = 2 "
            "(the example backend has one node: this machine)",
        ),
        (
            ["resources.gpus=H100:1"],
            "vft: error: resources.gpus: backend 'example' does not offer H100; it offers no GPUs "
            "(the example backend runs CPU-only plans)",
        ),
        (
            ["backend.example.gpus=2"],
            "vft: error: backend.example.gpus: unknown key (allowed: python, poll_s)",
        ),
    ],
)
def test_what_the_plugin_backend_cannot_do_fails_at_plan_time(installed, overrides, line):
    args = [a for o in overrides for a in ("--set", o)]
    out = vft("plan", SMOKE, "--backend", "example", *args, env=plugin_env())
    assert out.returncode == 2
    assert out.stderr == line + "\n"
    assert out.stdout == ""
