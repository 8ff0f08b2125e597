"""LocalBackend: preflight this machine, then run the plan's node 0 under the supervisor."""

from __future__ import annotations

from vft.core.backend import Backend, Capabilities


class LocalBackend(Backend):
    name = "local"
    capabilities = Capabilities(
        multi_node=False,
        detach=True,
        outputs=True,
        cpu=True,
        limits={"multi_node": "one machine; use the modal or slurm backend for nodes > 1"},
    )
