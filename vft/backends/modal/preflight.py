"""Checks before anything is built or paid for: what Modal offers, login, secrets, paths."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vft.backends.modal.spec import FunctionSpec, remote_script
from vft.core.errors import PreflightError
from vft.core.plan import Plan

if TYPE_CHECKING:
    from vft.core.gpus import GpuRequest

# Modal's GPU types and the most of each one container can have (Modal's GPU guide:
# A10 instances up to 4 GPUs, the others up to 8).
MAX_GPUS = {
    "T4": 8,
    "L4": 8,
    "A10G": 4,
    "L40S": 8,
    "A100-40GB": 8,
    "A100-80GB": 8,
    "H100": 8,
    "H200": 8,
    "B200": 8,
}
# Multi-node clusters: every container takes a whole 8-GPU host; at most 32 nodes / 256 GPUs.
CLUSTER_GPU_TYPES = ("H100", "H200", "B200")
CLUSTER_GPUS = 8
MAX_CLUSTER_NODES = 32
# what each well-known secret must hold, for the `modal secret create` line we print
SECRET_KEYS = {"wandb": "WANDB_API_KEY", "huggingface": "HF_TOKEN"}
LOGIN_HINT = "run `modal setup`, or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET"


def cluster_problem(request: GpuRequest, nodes: int) -> str | None:
    """Why Modal cannot give `nodes` containers of `request`, or None (the capability rule)."""
    if nodes <= 1 or request.type is None:
        return None
    gpu = request.type.name
    if gpu not in CLUSTER_GPU_TYPES or request.count != CLUSTER_GPUS:
        return (
            f"a Modal cluster (nodes = {nodes}) needs whole 8-GPU hosts of "
            f"{', '.join(CLUSTER_GPU_TYPES)}, e.g. 'H100:8'"
        )
    return None


def check_gpus(plan: Plan) -> None:
    """A GPU type, count or cluster shape Modal does not offer: refused before any build."""
    if plan.is_cpu:
        if plan.nodes > 1:
            raise PreflightError(
                f"resources.nodes: Modal clusters need GPUs; a CPU plan runs on one container, "
                f"got nodes = {plan.nodes}"
            )
        return
    gpu, count = str(plan.gpu_type), plan.gpus_per_node
    if gpu not in MAX_GPUS:
        raise PreflightError(
            f"resources.gpus: Modal does not offer {gpu}; it offers {', '.join(MAX_GPUS)}"
        )
    if count > MAX_GPUS[gpu]:
        raise PreflightError(
            f"resources.gpus: Modal gives at most {MAX_GPUS[gpu]} {gpu} per container, "
            f"got {gpu}:{count}"
        )
    if plan.nodes > 1:
        if gpu not in CLUSTER_GPU_TYPES or count != CLUSTER_GPUS:
            raise PreflightError(
                f"resources.gpus: a Modal cluster (nodes = {plan.nodes}) needs whole 8-GPU hosts "
                f"of {', '.join(CLUSTER_GPU_TYPES)}, e.g. 'H100:8'; got {gpu}:{count}"
            )
        if plan.nodes > MAX_CLUSTER_NODES:
            raise PreflightError(
                f"resources.nodes: a Modal cluster has at most {MAX_CLUSTER_NODES} nodes, "
                f"got {plan.nodes}"
            )


def check_paths(plan: Plan, spec: FunctionSpec) -> None:
    """Every path the plan runs must be inside what the container receives."""
    script = plan.trainer.script
    if script and remote_script(plan, spec.image.workdir) is None:
        raise PreflightError(
            f"trainer.script: {script!r} is not sent to Modal; use a path relative to the "
            "recipe's folder, beside it or a folder or two up"
        )
    for item, local, _ in spec.image.installs:
        if (
            not (Path(local) / "pyproject.toml").is_file()
            and not (Path(local) / "setup.py").is_file()
        ):
            raise PreflightError(
                f"environment.install: {item!r} is not a Python package folder (no pyproject.toml)"
            )


def check_account(secrets: tuple[str, ...]) -> Any:
    """Logged in, reachable, and every secret exists; returns the modal Client."""
    import modal
    from modal.exception import AuthError, NotFoundError

    try:
        client = modal.Client.from_env()
        client.hello()
    except AuthError:
        raise PreflightError("not logged in to Modal", hint=LOGIN_HINT) from None
    except modal.exception.InvalidError as exc:
        raise PreflightError(f"Modal configuration is not valid: {_first_line(exc)}") from None
    except (modal.exception.ConnectionError, OSError) as exc:
        raise PreflightError(f"cannot reach Modal: {_first_line(exc)}") from None
    for name in secrets:
        try:
            modal.Secret.from_name(name).hydrate(client=client)
        except NotFoundError:
            raise PreflightError(missing_secret(name)) from None
        except AuthError:
            raise PreflightError("Modal refused the token", hint=LOGIN_HINT) from None
    return client


def missing_secret(name: str) -> str:
    key = SECRET_KEYS.get(name, "KEY")
    value = "<your key>" if name in SECRET_KEYS else "VALUE"
    return (
        f"backend.modal.secrets: Modal secret {name!r} does not exist; create it with: "
        f"modal secret create {name} {key}={value}  (or drop it from [backend.modal] secrets)"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
