"""A recorded Modal run, seen through Modal's Python API: its status, logs, and stop.

Every function reads the `modal` entry that `launch` wrote into the local run.json
(app id, function call id, volume, run folder on the volume) and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from vft.backends.modal.preflight import LOGIN_HINT
from vft.core.errors import PreflightError, UserError
from vft.core.runs.folders import FINISHED, Attempt, RunStatus

LOG_POLL_S = 5.0


def modal_record(attempt: Attempt) -> dict[str, Any]:
    record = attempt.record().get("modal")
    if not record:
        raise UserError(
            f"{attempt.run_name}/{attempt.path.name} was not launched on Modal "
            "(its run.json has no Modal app); it may still be starting"
        )
    return record


@contextmanager
def modal_errors() -> Iterator[None]:
    """Modal's exceptions a user can act on, as one line."""
    from modal.exception import AuthError, ConnectionError, NotFoundError

    try:
        yield
    except AuthError:
        raise PreflightError("not logged in to Modal", hint=LOGIN_HINT) from None
    except ConnectionError as exc:
        raise PreflightError(f"cannot reach Modal: {exc}") from None
    except NotFoundError as exc:
        raise UserError(f"Modal does not know this run any more: {exc}") from None


def status(attempt: Attempt) -> dict[str, Any]:
    """run.json, brought up to date from Modal while the run is not finished."""
    record = attempt.record()
    call_id = (record.get("modal") or {}).get("function_call_id")
    if record.get("status") in FINISHED or not call_id:
        return record
    import modal

    with modal_errors():
        found = call_result(modal.FunctionCall.from_id(call_id))
        if found is None:
            info = modal.App.lookup(record["modal"]["app_id"]).info(refresh=True)
            state = info.lifecycle.state.value
            if state in ("stopped", "stopping"):
                found = ("stopped", None, f"the Modal app is {state}")
            else:
                return {**record, "status": "running", "app_state": state, **_node0(record)}
    state, code, reason = found
    fields: dict[str, Any] = {"status": state, "exit_code": code, "ended_at": time.time()}
    if reason:
        fields["failed"] = {"process": None, "reason": reason, "exit_code": code}
    if code == 0:  # a run that stopped itself at its budget also ends with 0
        fields |= budget_stop(record)
    return attempt.update(**fields)


def budget_stop(record: dict[str, Any]) -> dict[str, Any]:
    """The status, stop_reason and budget of a run that stopped at its budget, from the
    run.json the container wrote on the volume; {} for any other run (or unreadable)."""
    import json

    import modal

    path = f"{record['modal']['run_dir']}/run.json"
    try:
        data = json.loads(
            b"".join(modal.Volume.from_name(record["modal"]["volume"]).read_file(path))
        )
    except Exception:  # not committed, or unreadable: the call's own result stands
        return {}
    if data.get("stop_reason") != "budget":
        return {}
    return {k: data[k] for k in ("status", "stop_reason", "budget") if k in data}


def _node0(record: dict[str, Any]) -> dict[str, Any]:
    """Node 0's process table as last committed to the volume (best effort: may lag)."""
    import json

    import modal

    path = f"{record['modal']['run_dir']}/nodes/node-0.json"
    try:
        data = b"".join(modal.Volume.from_name(record["modal"]["volume"]).read_file(path))
        return {"processes": json.loads(data).get("processes", {})}
    except Exception:  # not committed yet, or unreadable: the status line does without it
        return {}


def call_result(call: Any, timeout: float = 0.0) -> tuple[str, int | None, str | None] | None:
    """(status, exit code, reason) of a finished call, or None while it runs after `timeout` s."""
    from modal.exception import FunctionTimeoutError, OutputExpiredError

    from vft.backends.modal.container import RunFailed

    try:
        value = call.get(timeout=timeout)
    except RunFailed as exc:
        return "failed", exc.exit_code, str(exc)
    except FunctionTimeoutError:
        return "failed", 124, "the container reached backend.modal.timeout_hours"
    except OutputExpiredError:
        return "failed", None, "Modal no longer holds this run's result"
    except TimeoutError:  # the builtin one: no result yet
        return None
    except Exception as exc:
        if type(exc).__name__ == "InputCancellation" or "cancel" in str(exc).lower():
            return "stopped", None, "stopped on Modal"
        return "failed", 1, f"{type(exc).__name__}: {exc}".splitlines()[0]
    code = int(value or 0)
    return ("succeeded" if code == 0 else RunStatus.FAILED), code, None


def wait(call: Any) -> tuple[str, int | None, str | None]:
    """Block until the call ends (a run that is not detached)."""
    while True:
        found = call_result(call, timeout=60.0)
        if found is not None:
            return found


def logs(attempt: Attempt, *, follow: bool, process: str | None) -> Iterator[str]:
    """The run's output lines from Modal; one process's own log file from the volume."""
    record = modal_record(attempt)
    if process:
        yield from volume_log(record, process, follow=follow)
        return
    import modal

    with modal_errors():
        call = modal.FunctionCall.from_id(record["function_call_id"])
        entries = call.logs.stream() if follow else call.logs.fetch()
        for entry in entries:
            yield from entry.message.rstrip("\n").split("\n")


def volume_log(record: dict[str, Any], process: str, *, follow: bool) -> Iterator[str]:
    """`logs/<process>.log` as last committed to the volume (every few minutes, and at the end)."""
    import modal

    volume = modal.Volume.from_name(record["volume"])
    call = modal.FunctionCall.from_id(record["function_call_id"])
    with modal_errors():
        yield from read_log(
            volume, record, process, follow=follow, ended=lambda: call_result(call) is not None
        )


def read_log(
    volume: Any,
    record: dict[str, Any],
    process: str,
    *,
    follow: bool,
    ended: Callable[[], bool],
    poll_s: float = LOG_POLL_S,
) -> Iterator[str]:
    """Whole lines of a log file on the volume; following, until the run has ended and its
    last commit has been read."""
    from vft.core.runs.folders import safe_name

    path = f"{record['run_dir']}/logs/{safe_name(process)}.log"
    sent = 0
    last = False
    while True:
        try:
            data = b"".join(volume.read_file(path))
        except FileNotFoundError:
            if not follow:
                raise UserError(
                    f"no log for process {process!r} on volume {record['volume']} yet "
                    f"({path}); logs are committed every few minutes"
                ) from None
            data = b""
        new = data[sent:]
        cut = len(new) if not follow or last else new.rfind(b"\n") + 1
        if cut:
            yield from new[:cut].decode(errors="replace").splitlines()
            sent += cut
        if not follow or last:
            return
        last = ended()  # one more read after the end: the final commit
        if not last:
            time.sleep(poll_s)


def stop(attempt: Attempt) -> None:
    """Stop the Modal app: its containers get SIGTERM, the supervisor stops every process
    in order, and the last volume commit runs before the container goes."""
    record = modal_record(attempt)
    import modal

    with modal_errors():
        modal.App.lookup(record["app_id"]).stop()
    attempt.update(status=RunStatus.STOPPED, ended_at=time.time())
