"""The `modal.App` for a Plan: one Function, one container per node, the Volume, the Secrets."""

from __future__ import annotations

from typing import Any

from vft.backends.modal.image import build_image
from vft.backends.modal.retry import run_node_restarting
from vft.backends.modal.spec import OUTPUTS, RETRY_DELAY_S, FunctionSpec


def build_app(spec: FunctionSpec) -> tuple[Any, Any]:
    """(app, function) built from `spec`; lazy, offline: nothing reaches Modal until `app.run()`.

    The function is `retry.run_node_restarting(plan_json, run_dir)`; on a multi-node
    plan it is clustered, so Modal starts `nodes` containers together and gives each one
    its rank. Its `retries` are the plan's restarts: the function raises only for a
    transient failure, so Modal never starts an error in the run again.
    """
    import modal

    app = modal.App(spec.app_name)
    volume = modal.Volume.from_name(spec.volume, create_if_missing=True)
    target: Any = run_node_restarting
    if spec.nodes > 1:
        target = modal.clustered(size=spec.nodes)(target)
    function = app.function(
        image=build_image(spec.image),
        gpu=spec.gpu,
        cpu=spec.cpu,
        memory=spec.memory_mib,
        timeout=spec.timeout_s,
        volumes={OUTPUTS: volume},
        secrets=[modal.Secret.from_name(name) for name in spec.secrets],
        # the code comes from the image's own layers; no second copy of the package
        include_source=False,
        retries=retries(spec.restarts),
        # one container per run; never reused for a later input
        single_use_containers=True,
    )(target)
    return app, function


def retries(restarts: int) -> Any:
    """Modal's retry policy for `restarts` restarts: a fixed delay, then the next try."""
    import modal

    if not restarts:
        return 0
    return modal.Retries(
        max_retries=restarts,
        backoff_coefficient=1.0,
        initial_delay=RETRY_DELAY_S,
        max_delay=max(RETRY_DELAY_S, 1.0),
    )
