"""The plugin machinery in-process: real entry-point discovery from distributions on sys.path.

Each test writes a distribution (a `*.dist-info` folder with `entry_points.txt`, and its
module) into its own folder on sys.path, exactly what pip leaves in site-packages, and
builds a fresh manager with `plugins.reset()`. The pip-installed packages under
tests/plugins/ are exercised through the CLI in test_plugins_installed.py.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vft import __version__
from vft.core.errors import UserError
from vft.core.planning.capabilities import Capabilities
from vft.core.plugins import registry as plugins
from vft.core.plugins.backend import Backend
from vft.core.plugins.registry import registry

BACKEND_MODULE = """
from vft.plugin import Backend, Capabilities, hookimpl

class {cls}(Backend):
    name = {name!r}
    capabilities = Capabilities(multi_node=True)

@hookimpl
def vft_register_backends(register):
    register({cls})
"""

Dist = Callable[..., str]


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No plugin switches from the outer environment; a fresh registry before and after."""
    for var in ("VFT_PLUGINS", "VFT_DISABLE_PLUGIN_AUTOLOAD"):
        monkeypatch.delenv(var, raising=False)
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean: None) -> Iterator[Dist]:
    """`dist(project, source, entry=None, version="1.0")` installs a one-module distribution.

    Returns the module's (unique) name; `source` may use `{cls}` for a unique class name.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    made: list[str] = []

    def make(project: str, source: str, entry: str | None = None, version: str = "1.0") -> str:
        module = f"vftfake_{uuid.uuid4().hex[:10]}"
        code = source.replace("{cls}", f"C_{module}")
        (site / f"{module}.py").write_text(textwrap.dedent(code))
        info = site / f"{project.replace('-', '_')}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n"
        )
        with (info / "entry_points.txt").open("a") as f:
            f.write(f"[vft]\n{entry or project} = {module}\n")
        made.append(module)
        return module

    yield make
    for module in made:
        sys.modules.pop(module, None)


def mine(errors: list[str], package: str) -> list[str]:
    """The errors about `package` (plugins installed in this environment may add their own)."""
    return [e for e in errors if e.startswith(f"{package}: ")]


def backend_source(name: str) -> str:
    return BACKEND_MODULE.replace("{name!r}", repr(name))


def test_builtins_are_registered_with_autoload_off(clean, monkeypatch):
    monkeypatch.setenv("VFT_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg = registry()
    assert {"local", "modal"} <= set(reg.backends)
    assert "vllm" in reg.servers
    assert (reg.backends["local"].package, reg.backends["local"].version) == ("vft", __version__)
    assert reg.backend("local").name == "local"
    assert registry() is reg  # built once per process until reset()


def test_entry_point_plugin_is_found_with_its_distribution(dist):
    dist("vft-acme", backend_source("acme"), version="2.3")
    reg = registry()
    assert reg.backends["acme"].package == "vft-acme"
    assert reg.backends["acme"].version == "2.3"
    assert isinstance(reg.backend("acme"), Backend)
    assert not mine(reg.errors, "vft-acme")


def test_autoload_off_loads_no_external_plugin(dist, monkeypatch):
    dist("vft-acme", backend_source("acme"))
    monkeypatch.setenv("VFT_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugins.reset()
    reg = registry()
    assert "acme" not in reg.backends
    assert "local" in reg.backends
    with pytest.raises(UserError, match=r"unknown backend 'acme'; installed: local, modal"):
        reg.backend("acme")


def test_allowlist_by_distribution_or_entry_point_name(dist, monkeypatch):
    dist("vft-acme", backend_source("acme"), entry="acme-ep")
    dist("vft-other", backend_source("other"))
    for allow in ("vft-acme", "vft_acme", "acme-ep", " VFT-ACME ,"):
        monkeypatch.setenv("VFT_PLUGINS", allow)
        plugins.reset()
        reg = registry()
        assert "acme" in reg.backends, allow
        assert "other" not in reg.backends, allow
        assert {"local", "modal"} <= set(reg.backends)  # built-ins are not plugins to narrow


def test_allowlist_names_a_missing_plugin(dist, monkeypatch):
    dist("vft-acme", backend_source("acme"))
    monkeypatch.setenv("VFT_PLUGINS", "vft-acme,vft-typo")
    reg = registry()
    assert "acme" in reg.backends
    assert reg.errors == ["VFT_PLUGINS: no installed package provides a vft plugin 'vft-typo'"]


def test_duplicate_backend_name_names_both_packages(dist):
    dist("vft-one", backend_source("twin"), version="1.0")
    dist("vft-two", backend_source("twin"), version="2.0")
    dist("vft-bystander", backend_source("bystander"))
    reg = registry()
    expected = (
        "backend name 'twin' is registered twice: by vft-one 1.0 and by vft-two 2.0; "
        "uninstall one, or limit plugins with VFT_PLUGINS"
    )
    assert expected in reg.errors
    with pytest.raises(UserError) as err:
        reg.backend("twin")
    assert err.value.line() == f"--backend: {expected}"
    assert "twin" not in reg.backends
    assert reg.backend("bystander").name == "bystander"  # the others still work
    assert reg.backend("local").name == "local"


def test_a_plugin_cannot_take_a_builtin_name(dist):
    dist("vft-evil", backend_source("local"), version="6.6")
    reg = registry()
    with pytest.raises(UserError, match=r"'local' is registered twice: by vft .* and by vft-evil"):
        reg.backend("local")
    assert reg.backend("modal").name == "modal"


def test_two_distributions_declaring_one_entry_point_name(dist):
    dist("vft-one", backend_source("one"), entry="shared")
    dist("vft-two", backend_source("two"), entry="shared")
    reg = registry()
    assert "one" not in reg.backends and "two" not in reg.backends
    assert any(
        e.startswith("vft-one and vft-two: both declare the vft plugin 'shared'")
        for e in reg.errors
    ), reg.errors


def test_a_plugin_that_fails_to_import_is_reported_and_skipped(dist):
    dist("vft-fine", backend_source("fine"))
    dist("vft-crashy", "raise RuntimeError('no config file for crashy')\n")
    reg = registry()
    assert reg.backend("fine").name == "fine"
    assert mine(reg.errors, "vft-crashy") == [
        "vft-crashy: cannot load plugin 'vft-crashy': RuntimeError: no config file for crashy"
    ]
    with pytest.raises(UserError, match=r"plugins that failed to load: vft-crashy: cannot load"):
        reg.backend("crashy")


def test_a_hook_with_arguments_the_spec_lacks_is_refused(dist):
    source = (
        "from vft.plugin import hookimpl\n"
        "@hookimpl\ndef vft_register_backends(register, config):\n    pass\n"
    )
    dist("vft-wrongargs", source)
    reg = registry()
    [error] = mine(reg.errors, "vft-wrongargs")
    assert error.startswith("vft-wrongargs: cannot load plugin 'vft-wrongargs': ")
    assert "{'config'}" in error
    assert reg.backend("local").name == "local"


def test_a_misspelt_hook_is_reported(dist):
    source = "from vft.plugin import hookimpl\n@hookimpl\ndef vft_register_backend(register):\n    pass\n"
    dist("vft-typo", source)
    reg = registry()
    assert mine(reg.errors, "vft-typo") == [
        "vft-typo: vft_register_backend is not a vft hook "
        "(hooks: vft_register_backends, vft_register_inference_servers)"
    ]
    # unregistered, so a later check of pending hooks (or a call) sees nothing of it
    pm, _ = plugins.plugin_manager()
    assert (
        not hasattr(pm.hook, "vft_register_backend")
        or not pm.hook.vft_register_backend.get_hookimpls()
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("class {cls}: name = 'x'", "is not a subclass of vft.plugin.Backend"),
        ("class {cls}(Backend): name = 'Has Space'", "has name 'Has Space'"),
        ("class {cls}(Backend): pass", "has name None"),
        (
            "class {cls}(Backend):\n    name = 'caps'\n    capabilities = {'multi_node': True}",
            "capabilities must be a vft.plugin.Capabilities",
        ),
        (
            "class {cls}(Backend):\n    name = 'opts'\n    options_model = dict",
            "options_model must be an options model class (pydantic, or vft.plugin.Table) or None",
        ),
    ],
)
def test_register_checks_each_class(dist, body, message):
    source = (
        "from vft.plugin import Backend, hookimpl\n"
        f"{body}\n@hookimpl\ndef vft_register_backends(register):\n    register({{cls}})\n"
    )
    dist("vft-bad", source)
    reg = registry()
    [error] = mine(reg.errors, "vft-bad")
    assert message in error


def test_a_raising_hook_registers_nothing_of_its_own(dist):
    source = """
        from vft.core.plugins.backend import Backend
        from vft.core.hooks import hookimpl
        class {cls}(Backend):
            name = "half"
        @hookimpl
        def vft_register_backends(register):
            register({cls})
            raise ImportError("cannot import name 'Client' from 'mycloud'")
        """
    dist("vft-half", source)
    reg = registry()
    assert "half" not in reg.backends
    assert mine(reg.errors, "vft-half") == [
        "vft-half: vft_register_backends failed: ImportError: cannot import name 'Client' from 'mycloud'"
    ]


def test_inference_servers_register_like_backends(dist):
    source = """
        from vft.core.hooks import hookimpl
        from vft.core.engines.base import InferenceServer
        class {cls}(InferenceServer):
            name = "sglang"
            def command(self, part):
                return ["python", "-m", "sglang.launch_server", "--port", str(part.port)]
        @hookimpl
        def vft_register_inference_servers(register):
            register({cls})
        """
    dist("vft-sglang", source)
    reg = registry()
    assert reg.servers["sglang"].package == "vft-sglang"
    assert reg.server("sglang").needs_gpu is True  # the default: engines need GPUs
    with pytest.raises(UserError, match=r"inference.engine: unknown inference server 'sgl'"):
        reg.server("sgl")


def test_registered_classes_carry_their_distribution_and_version(dist):
    module = dist("vft-acme", backend_source("acme"), version="4.5")
    pm, _ = plugins.plugin_manager()
    assert pm.get_plugin("vft-acme").__name__ == module
    entry = plugins.registry().backends["acme"]
    assert (entry.package, entry.version) == ("vft-acme", "4.5")


def test_hook_names_are_the_hookspecs():
    assert plugins.hook_names() == ["vft_register_backends", "vft_register_inference_servers"]


def test_capabilities_accept_a_list_of_gpu_types_and_reject_unknown_limits():
    caps = Capabilities(gpu_types=["h100", "A100-80GB"])  # type: ignore[arg-type]
    assert caps.gpu_types == frozenset({"h100", "A100-80GB"})
    with pytest.raises(ValueError, match="unknown feature"):
        Capabilities(limits={"multinode": "typo"})


def test_a_backend_that_fails_to_start_is_a_one_line_error(dist):
    source = """
        from vft.core.plugins.backend import Backend
        from vft.core.hooks import hookimpl
        class {cls}(Backend):
            name = "fragile"
            def __init__(self):
                raise KeyError("MYCLOUD_REGION")
        @hookimpl
        def vft_register_backends(register):
            register({cls})
        """
    dist("vft-fragile", source, version="0.3")
    with pytest.raises(UserError) as err:
        registry().backend("fragile")
    assert err.value.line() == (
        "--backend: backend 'fragile' from vft-fragile 0.3 failed to start: KeyError: 'MYCLOUD_REGION'"
    )
