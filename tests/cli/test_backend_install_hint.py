"""A backend vft knows of but that is not installed (slurm, its own package) is named with
the way to install it, in the one error line. Real `vft` processes; plugins not loaded
(VFT_DISABLE_PLUGIN_AUTOLOAD=1) stands for a machine without vft-slurm."""

from __future__ import annotations

import pytest

from tests.cli.test_run_cli import SMOKE, error_line
from vft.testing import run_vft

NO_PLUGINS = {"VFT_DISABLE_PLUGIN_AUTOLOAD": "1"}
INSTALL = (
    "'slurm' is not installed: it is the vft-slurm package, "
    "`pip install ./plugins/vft-slurm` in a vft checkout"
)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("slurm", f"({INSTALL})"),
        ("slurn", f"(did you mean 'slurm'? {INSTALL})"),
        ("Slurm", f"({INSTALL})"),
    ],
)
def test_a_known_backend_not_installed_says_how_to_install_it(tmp_path, name, hint):
    planned = run_vft("plan", SMOKE, "-b", name, cwd=tmp_path, env=NO_PLUGINS)
    assert planned.returncode == 2
    assert error_line(planned.stderr) == (
        f"vft: error: --backend: unknown backend {name!r} {hint}; installed: local, modal"
    )


def test_other_unknown_backends_are_unchanged(tmp_path):
    for name, hint in (("modl", " (did you mean 'modal'?)"), ("xyz", "")):
        planned = run_vft("plan", SMOKE, "-b", name, cwd=tmp_path, env=NO_PLUGINS)
        assert planned.returncode == 2
        assert error_line(planned.stderr) == (
            f"vft: error: --backend: unknown backend {name!r}{hint}; installed: local, modal"
        )
