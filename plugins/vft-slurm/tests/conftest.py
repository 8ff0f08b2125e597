"""The vft-slurm tests: run from the repository root (`python -m pytest`) or from here.

They use vft's pytest plugin (vft/testing.py: `no_leftovers`, `run_vft`, ...) and the
`slurm` marker (tests that need the local Slurm test cluster).
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points

# vft.testing registers itself through its `pytest11` entry point once that is installed;
# until then (or with autoloading off) it is registered here. Both would be an error.
_AUTOLOADED = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") and any(
    ep.value == "vft.testing" for ep in entry_points(group="pytest11")
)
pytest_plugins = [] if _AUTOLOADED else ["vft.testing"]


def pytest_configure(config) -> None:
    # Also declared in the repository's pyproject.toml; here for runs outside the checkout.
    config.addinivalue_line(
        "markers", "slurm: needs the local Slurm test cluster (scripts/slurm-test-cluster.sh)"
    )
