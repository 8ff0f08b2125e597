"""A backend's options model named as "module:Class" is built only when it is used."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vft.core.errors import UserError
from vft.core.plugins.backend import Backend, LazyModel
from vft.core.plugins.registry import Registry, _invalid, did_you_mean


def test_a_named_model_is_imported_on_first_read(tmp_path: Path) -> None:
    """In a fresh interpreter: defining and registering the backend imports nothing of the
    model; reading `options_model` gives the class."""
    code = textwrap.dedent(
        """
        import sys
        from vft.core.plugins.backend import Backend
        from vft.core.plugins.registry import _invalid

        class B(Backend):
            name = "b"
            options_model = "vft.backends.modal.options:ModalOptions"

        assert _invalid(B, "backend", Backend) is None
        before = "vft.backends.modal.options" in sys.modules
        model = B.options_model
        print(before, model.__name__, B().options_model is model)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "ModalOptions", "True"]


def test_the_modal_backend_names_its_model() -> None:
    from vft.backends.modal.backend import ModalBackend
    from vft.backends.modal.options import ModalOptions

    raw = ModalBackend.__dict__["options_model"]
    assert isinstance(raw, LazyModel)
    assert ModalBackend.options_model is ModalOptions


def test_a_model_that_cannot_be_imported_is_one_line() -> None:
    class Broken(Backend):
        name = "broken"
        options_model = "no_such_module_here:Options"

    with pytest.raises(UserError) as info:
        _ = Broken.options_model
    assert info.value.line().startswith(
        "--backend: the options of backend 'broken' (no_such_module_here:Options) cannot be "
        "loaded: ModuleNotFoundError"
    )
    assert "\n" not in info.value.line()


def test_a_named_class_that_is_not_a_model_is_refused() -> None:
    class NotAModel(Backend):
        name = "nam"
        options_model = "pathlib:Path"

    with pytest.raises(UserError, match="options_model pathlib:Path is not an options model"):
        _ = NotAModel.options_model


def test_registration_refuses_a_malformed_name() -> None:
    class Odd(Backend):
        name = "odd"
        options_model = "not a target"

    problem = _invalid(Odd, "backend", Backend)
    assert problem is not None
    assert problem.startswith("backend 'odd' (")
    assert problem.endswith("): options_model 'not a target' is not 'module:Class'")


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("modall", " (did you mean 'modal'?)"),
        ("MODAL", " (did you mean 'modal'?)"),
        ("slrum", " (did you mean 'slurm'?)"),
        ("aws", ""),
        ("x" * 5000, ""),
    ],
)
def test_did_you_mean(name: str, hint: str) -> None:
    assert did_you_mean(name, ["local", "modal", "slurm"]) == hint


def test_unknown_inference_server_suggests_too() -> None:
    reg = Registry()
    with pytest.raises(UserError) as info:
        reg.server("vlm")
    assert "unknown inference server 'vlm'" in info.value.line()
    reg.servers["vllm"] = None  # type: ignore[assignment]  # only its name is read
    with pytest.raises(UserError, match=r"'vlm' \(did you mean 'vllm'\?\); installed: vllm"):
        reg.server("vlm")
