"""ModalBackend: build the modal.App for a Plan and run it (modal imported lazily)."""

from __future__ import annotations

from vft.backends.modal.options import ModalOptions
from vft.core.backend import Backend, Capabilities


class ModalBackend(Backend):
    name = "modal"
    options_model = ModalOptions
    capabilities = Capabilities(
        multi_node=True,
        detach=True,
        outputs=True,
        cpu=True,
        max_gpus_per_node=8,
        max_nodes=64,
        gpu_types=frozenset(
            {"T4", "L4", "A10G", "L40S", "A100-40GB", "A100-80GB", "H100", "H200", "B200"}
        ),
        limits={"max_gpus_per_node": "Modal gives at most 8 GPUs per container"},
    )
