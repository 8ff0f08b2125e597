"""`[backend.<name>]` tables: vft's own options models are tables (no pydantic), a
plugin's may be pydantic; launch validates both and names the key the same way."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from vft.backends.modal.options import ModalOptions
from vft.core.errors import RecipeError
from vft.launch import _validated_options


class PluginOptions(BaseModel):
    """A third-party backend's options, as the plugin contract allows: pydantic."""

    model_config = ConfigDict(extra="forbid")
    nodes: int = Field(1, ge=1)


def test_builtin_options_are_validated_by_the_table() -> None:
    options = _validated_options(ModalOptions, {"cpu": 4, "pip": ["x==1"]}, "modal")
    assert options["cpu"] == 4.0 and options["pip"] == ["x==1"]
    assert options["volume"] == "vft-outputs" and options["secrets"] == ["wandb", "huggingface"]
    assert ModalOptions().model_dump(mode="json") == _validated_options(ModalOptions, {}, "modal")


@pytest.mark.parametrize(
    ("table", "line"),
    [
        (
            {"timeout_hours": 30},
            "backend.modal.timeout_hours: 30 is not allowed: it must be greater than 0, at most 24",
        ),
        (
            {"pip": ["ok", "--index-url=x"]},
            "backend.modal.pip[1]: '--index-url=x' is not allowed: it is not a package name "
            "(one requirement per item, no options)",
        ),
        (
            {"secrets": ["a b"]},
            "backend.modal.secrets[0]: 'a b' is not allowed: not a Modal secret name: use "
            "letters, digits, '.', '_' or '-' (at most 63 characters, starting alphanumeric)",
        ),
        ({"volum": "v"}, "backend.modal.volum: unknown key (did you mean 'volume'?)"),
        (
            {"memory_gib": 1.5},
            "backend.modal.memory_gib: 1.5 is not allowed: use a whole number "
            "(allowed: greater than 0, at most 2048)",
        ),
    ],
)
def test_builtin_options_errors_name_the_key(table: dict, line: str) -> None:
    with pytest.raises(RecipeError) as info:
        _validated_options(ModalOptions, table, "modal")
    assert info.value.line() == line


def test_a_plugins_pydantic_options_still_work() -> None:
    assert _validated_options(PluginOptions, {"nodes": 2}, "p") == {"nodes": 2}
    with pytest.raises(RecipeError) as info:
        _validated_options(PluginOptions, {"nodes": 0}, "p")
    assert info.value.line() == "backend.p.nodes: Input should be greater than or equal to 1"
    with pytest.raises(RecipeError) as info:
        _validated_options(PluginOptions, {"gpus": 2}, "p")
    assert info.value.line() == "backend.p.gpus: unknown key (allowed: nodes)"
