"""Every hook in vft/core/plugins/hookspecs.py is documented in docs/plugins.md, with its signature."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from vft.core.plugins import hookspecs
from vft.core.plugins.registry import hook_names

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def signature(name: str) -> str:
    """`def name(arg: Annotation, ...) -> Return:` as written in hookspecs.py."""
    fn = getattr(hookspecs, name)
    sig = inspect.signature(fn)  # annotations stay strings: `from __future__ import annotations`
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {name}({params}) -> {sig.return_annotation}:"


def section(text: str, name: str) -> str:
    """The text under the `### name` heading, up to the next heading."""
    match = re.search(rf"^### {re.escape(name)}\n(.*?)(?=^#)", text + "\n#", re.M | re.S)
    assert match, f"docs/plugins.md has no '### {name}' section"
    return match.group(1)


@pytest.mark.parametrize("name", hook_names())
def test_hook_is_documented_with_its_signature(name):
    body = section(DOCS.read_text(), name)
    assert signature(name) in body, "the signature in docs/plugins.md differs from hookspecs.py"
    doc = inspect.getdoc(getattr(hookspecs, name))
    assert doc and doc.splitlines()[0] in body, "the hook's docstring is not in its section"


def test_docs_name_no_hook_that_does_not_exist():
    documented = set(re.findall(r"^### (vft_\w+)", DOCS.read_text(), re.M))
    assert documented == set(hook_names())


def test_signature_is_what_pluggy_sees():
    # the documented parameter names are the ones plugins must use
    for name in hook_names():
        spec = getattr(hookspecs, name)
        assert list(inspect.signature(spec).parameters) == ["register"]
        assert hasattr(spec, "vft_spec")  # declared with the `vft` HookspecMarker


def test_signature_renders_as_written():
    assert signature("vft_register_backends") == (
        "def vft_register_backends(register: Callable[[type[Backend]], None]) -> None:"
    )
