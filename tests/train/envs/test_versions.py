"""An environment the installed verifiers cannot run is refused with one line saying why and
which verifiers can, not a raw traceback (the classic API left verifiers in 0.4)."""

from __future__ import annotations

import sys

import pytest

from vft.train.envs import EnvironmentCodeError, find_module


def test_a_classic_environment_under_a_verifiers_without_the_classic_api(tmp_path, monkeypatch):
    pkg = tmp_path / "vfx_needs_classic"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import verifiers as vf\n"
        "raise AttributeError(\"module 'verifiers' has no attribute 'SingleTurnEnv'\")\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EnvironmentCodeError) as info:
        find_module("vfx_needs_classic")
    line = info.value.line()
    assert "uses the classic API (import verifiers as vf)" in line
    assert "pip install 'verifiers>=0.3.1,<0.4'" in line
    assert "vfx_needs_classic/__init__.py:2" in line  # where, in the environment's code
    sys.modules.pop("vfx_needs_classic", None)
