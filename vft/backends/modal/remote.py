"""A recorded Modal run, seen through Modal's Python API: its status, logs, and stop.

Every function starts from the `modal` entry that `launch` wrote into the local run.json
(app id, function call id, volume, run folder on the volume). A restart by Modal's
retries runs as a new attempt folder on the volume, whose run.json names the launch it
belongs to (`retry.same_launch`): `current` finds this launch's newest one, and status,
logs and outputs read that; a finished call's record takes the container's own account
of its end (a failure's process and one-line reason) from there.
"""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from vft.backends.modal.preflight import LOGIN_HINT
from vft.core.errors import PreflightError, UserError
from vft.core.runs.folders import ATTEMPT, FINISHED, Attempt, RunStatus

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
    """run.json, brought up to date from Modal while the run is not finished: the call's
    outcome, and which attempt of this launch is current on the volume (a restart by
    Modal's retries is a new attempt folder there)."""
    record = attempt.record()
    call_id = (record.get("modal") or {}).get("function_call_id")
    if record.get("status") in FINISHED or not call_id:
        return record
    import modal

    with modal_errors():
        found = call_result(modal.FunctionCall.from_id(call_id))
        volume = modal.Volume.from_name(record["modal"]["volume"])
        now = current(volume, record["modal"])
        if found is None:
            info = modal.App.lookup(record["modal"]["app_id"]).info(refresh=True)
            state = info.lifecycle.state.value
            if state in ("stopped", "stopping"):
                found = ("stopped", None, f"the Modal app is {state}")
            else:
                moved = where_fields(record["modal"], now)
                if moved and moved["modal"] != record["modal"]:
                    record = attempt.update(**moved)
                return {
                    **record,
                    "status": "running",
                    "app_state": state,
                    **_node0(volume, now.run_dir),
                }
    return finish(attempt, found, now)


@dataclass(frozen=True)
class Current:
    """The attempt of a launch that runs (or ran last) on the volume: its folder, and its
    run.json as last committed (None: not committed yet, or unreadable)."""

    run_dir: str
    record: dict[str, Any] | None


def current(volume: Any, modal: Mapping[str, Any]) -> Current:
    """The newest attempt this launch made on the volume: the launched folder, or the
    newest later `attempt-N` beside it whose run.json names this launch (a restart by
    Modal's retries); a later launch of the same name never counts."""
    from modal.exception import NotFoundError

    from vft.backends.modal.retry import same_launch

    first = modal["run_dir"]
    parent, leaf = posixpath.split(first)
    launched = ATTEMPT.match(leaf)
    entries: list[Any] = []
    with suppress(NotFoundError, FileNotFoundError):  # nothing committed there yet
        entries = volume.listdir(parent) if launched else []
    numbers = {int(m.group(1)) for e in entries if (m := ATTEMPT.match(posixpath.basename(e.path)))}
    start = int(launched.group(1)) if launched else None
    # never back to an earlier attempt than one already found (a read that failed this
    # time must not make `vft logs -f` replay the older attempts' logs)
    known = str(modal.get("current_run_dir") or first)
    seen = ATTEMPT.match(posixpath.basename(known))
    floor = int(seen.group(1)) if seen and posixpath.dirname(known) == parent else start
    for number in sorted(numbers, reverse=True):
        if start is None or floor is None or number <= floor:
            break
        run_dir = f"{parent}/attempt-{number}"
        data = volume_json(volume, f"{run_dir}/run.json")
        if data is not None and same_launch(data, first, modal.get("function_call_id")):
            return Current(run_dir, data)
    if floor is None or floor == start:
        known = first
    return Current(known, volume_json(volume, f"{known}/run.json"))


def volume_json(volume: Any, path: str) -> dict[str, Any] | None:
    """A JSON object file on the volume; None when it is not there (yet) or not an object."""
    try:
        data = json.loads(b"".join(volume.read_file(path)))
    except Exception:  # not committed, or unreadable: the caller does without it
        return None
    return data if isinstance(data, dict) else None


def where_fields(modal: Mapping[str, Any], now: Current) -> dict[str, Any]:
    """The local run.json's fields for a launch whose current attempt on the volume is a
    restart: the folder (`modal.current_run_dir`) and why (`restart`, with `where`)."""
    if now.run_dir == modal["run_dir"]:
        return {}
    fields: dict[str, Any] = {"modal": {**modal, "current_run_dir": now.run_dir}}
    restart = (now.record or {}).get("restart")
    if isinstance(restart, dict):
        fields["restart"] = {**restart, "where": f"{modal['volume']}:/{now.run_dir}"}
    return fields


def current_run_dir(volume: Any, modal: Mapping[str, Any]) -> str:
    """The folder on the volume that `vft logs` and `vft outputs` read: the current one."""
    return current(volume, modal).run_dir


def finish(
    attempt: Attempt, found: tuple[str, int | None, str | None], now: Current
) -> dict[str, Any]:
    """Record a finished call in the local run.json: its status and exit code, the
    current attempt on the volume, and what the container recorded there of its end (a
    failure's process and one-line reason; a stop at the budget)."""
    state, code, reason = found
    record = attempt.record()
    fields: dict[str, Any] = {"status": state, "exit_code": code, "ended_at": time.time()}
    fields |= where_fields(record["modal"], now)
    ended = now.record or {}
    failed = ended.get("failed")
    if state == RunStatus.FAILED and isinstance(failed, dict) and failed.get("reason"):
        fields["failed"] = {
            "process": failed.get("process"),
            "reason": str(failed["reason"]).strip().splitlines()[0],
            "exit_code": failed.get("exit_code", code),
        }
    elif reason or state == RunStatus.FAILED:
        why = reason or f"the container ended with exit code {code} (its record was not readable)"
        fields["failed"] = {"process": None, "reason": why, "exit_code": code}
    if code == 0 and ended.get("stop_reason") == "budget":  # a budget stop also ends with 0
        fields |= {k: ended[k] for k in ("status", "stop_reason", "budget") if k in ended}
    return attempt.update(**fields)


def _node0(volume: Any, run_dir: str) -> dict[str, Any]:
    """Node 0's process table as last committed to the volume (best effort: may lag)."""
    data = volume_json(volume, f"{run_dir}/nodes/node-0.json")
    return {"processes": data.get("processes", {})} if data else {}


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
    """`logs/<process>.log` of the launch's current attempt, as last committed to the
    volume (every few minutes, and at the end)."""
    import modal

    volume = modal.Volume.from_name(record["volume"])
    call = modal.FunctionCall.from_id(record["function_call_id"])
    with modal_errors():
        launched = dict(record)
        yield from read_log(
            volume,
            {**record, "run_dir": current_run_dir(volume, launched)},
            process,
            follow=follow,
            ended=lambda: call_result(call) is not None,
            current_dir=lambda: current_run_dir(volume, launched),
        )


def read_log(
    volume: Any,
    record: dict[str, Any],
    process: str,
    *,
    follow: bool,
    ended: Callable[[], bool],
    poll_s: float = LOG_POLL_S,
    current_dir: Callable[[], str] | None = None,
) -> Iterator[str]:
    """Whole lines of a log file on the volume; following, until the run has ended and its
    last commit has been read. `current_dir`: the launch's current attempt folder; when
    a restart moves the run there, the old log is read to its end and the new one follows."""
    from vft.core.runs.folders import safe_name

    run_dir = record["run_dir"]
    sent = 0
    last = False
    while True:
        # where the run is, asked before reading: a restart's old log is already final
        now = current_dir() if follow and current_dir is not None else run_dir
        path = f"{run_dir}/logs/{safe_name(process)}.log"
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
        whole = not follow or last or now != run_dir
        cut = len(new) if whole else new.rfind(b"\n") + 1
        if cut:
            yield from new[:cut].decode(errors="replace").splitlines()
            sent += cut
        if now != run_dir:
            yield f"vft: restarted as {now} on volume {record['volume']}; its {process} log:"
            run_dir, sent = now, 0
            continue
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
