"""Start a Plan on Modal: build the app, spawn the call, record it, wait unless detached."""

from __future__ import annotations

import sys
import time
from pathlib import PurePosixPath
from typing import Any

from vft.backends.modal import remote
from vft.backends.modal.app import build_app
from vft.backends.modal.spec import (
    FunctionSpec,
    function_spec,
    plan_in_container,
    remote_run_dir,
)
from vft.core.errors import UserError
from vft.core.node.logrelay import verbose_from_env
from vft.core.plan import Plan
from vft.core.runs.folders import ATTEMPT, Attempt, RunStatus


def free_run_dir(volume: Any, name: str, number: int) -> str:
    """`name/attempt-N` on the volume, N moved past any attempt already there.

    The local attempt number is the default; a run of the same name launched from another
    machine (or a deleted local outputs/ folder) must not write into an earlier attempt.
    """
    from modal.exception import NotFoundError

    try:
        entries = volume.listdir(name)
    except (NotFoundError, FileNotFoundError):
        return remote_run_dir(name, number)
    taken = {int(m.group(1)) for e in entries if (m := ATTEMPT.match(PurePosixPath(e.path).name))}
    return remote_run_dir(name, number if number not in taken else max(taken) + 1)


def launch(plan: Plan, attempt: Attempt, *, detach: bool, spec: FunctionSpec | None = None) -> int:
    """Run `plan` on Modal; the exit code (0 at once when detached)."""
    import modal
    from modal.exception import ImageBuildError

    spec = spec or function_spec(plan)
    with remote.modal_errors():
        volume = modal.Volume.from_name(spec.volume, create_if_missing=True)
        run_dir = free_run_dir(volume, plan.name, attempt.number)
    record: dict[str, Any] = {
        "app_name": spec.app_name,
        "volume": spec.volume,
        "run_dir": run_dir,
        "detached": detach,
    }
    attempt.update(backend="modal", status=RunStatus.LAUNCHING, modal=record)
    try:
        app, function = build_app(spec)
        with remote.modal_errors(), modal.enable_output(), app.run(detach=detach):
            call = function.spawn(
                plan_in_container(plan, spec).to_json(), run_dir, verbose_from_env()
            )
            record |= {
                "app_id": app.app_id,
                "function_call_id": call.object_id,
                "dashboard_url": f"https://modal.com/id/{app.app_id}",
            }
            attempt.update(status=RunStatus.RUNNING, started_at=time.time(), modal=record)
            if detach:
                _say_detached(plan, record)
                return 0
            state, code, reason = remote.wait(call)
    except ImageBuildError as exc:
        attempt.update(status=RunStatus.FAILED, exit_code=1, ended_at=time.time())
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "see the build log above"
        raise UserError(f"the Modal image did not build: {first}") from None
    except KeyboardInterrupt:
        # leaving app.run() without detach stops the app and its containers
        attempt.update(status=RunStatus.STOPPED, ended_at=time.time())
        return 130
    except BaseException as exc:  # never leave the record saying "launching"
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        attempt.update(
            status=RunStatus.FAILED,
            ended_at=time.time(),
            failed={"process": None, "reason": reason},
        )
        raise
    try:  # the container's own record of its end, and the attempt a restart made
        now = remote.current(volume, record)
    except Exception:  # the volume unreachable now: the call's own result stands
        now = remote.Current(record["run_dir"], None)
    remote.finish(attempt, (state, code, reason), now)
    return 0 if state == "succeeded" else (code or 1)


def _say_detached(plan: Plan, record: dict[str, Any]) -> None:
    print(
        f"vft: {plan.name} runs on Modal as app {record['app_id']} ({record['dashboard_url']}); "
        f"its files land on volume {record['volume']} under /{record['run_dir']}",
        file=sys.stderr,
        flush=True,
    )
