"""vft-slurm: the Slurm backend, installed like any third-party vft plugin.

The entry point (group `vft`) names this module; vft calls its hook to register the
backend. Importing it stays light: Slurm is reached through its commands, at run time.
"""

from __future__ import annotations

from collections.abc import Callable

from vft.plugin import hookimpl

__version__ = "0.1.0"


@hookimpl
def vft_register_backends(register: Callable[[type], None]) -> None:
    from vft_slurm.backend import SlurmBackend

    register(SlurmBackend)
