"""Reading run records: a record that is missing, not JSON, or holds a field of the wrong
type is an `UnreadableRecord` (shown as "unreadable: <reason>"), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vft.core.errors import UserError
from vft.core.runs.paths import os_reason

if TYPE_CHECKING:
    from vft.core.runs.folders import Attempt


class UnreadableRecord(UserError, ValueError):
    """A record (run.json, a node's file, plan.json) that is missing, not JSON, or holds a
    field of the wrong type: shown as "unreadable: <reason>", never a traceback. Also a
    ValueError, so callers that already treat a bad plan.json as one keep working."""

    def __init__(self, attempt: Attempt, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{attempt.run_name} attempt-{attempt.number}: unreadable: {reason}")


def short_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def load_object(attempt: Attempt, path: Path) -> dict[str, Any]:
    """A record file as a JSON object, or UnreadableRecord saying why not."""
    name = str(path.relative_to(attempt.path)) if path.is_relative_to(attempt.path) else path.name
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise UnreadableRecord(attempt, f"{name} is missing") from None
    except OSError as exc:
        raise UnreadableRecord(attempt, f"{name}: {os_reason(exc)}") from None
    except ValueError as exc:  # not JSON, truncated, not UTF-8
        raise UnreadableRecord(attempt, f"{name} is not JSON ({short_reason(exc)})") from None
    if not isinstance(data, dict):
        raise UnreadableRecord(attempt, f"{name} holds a {_kind(data)}, not a JSON object")
    return data


#: JSON types by name, as a field's expectation says them
_NUMBER = (int, float)
RUN_FIELDS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "attempt": (int,),
    "backend": (str,),
    "status": (str,),
    "created_at": _NUMBER,
    "started_at": _NUMBER,
    "ended_at": _NUMBER,
    "submitted_at": _NUMBER,
    "exit_code": (int,),
    "supervisor_pid": (int,),
    "supervisor_create_time": _NUMBER,
    "detached": (bool,),
    "nodes": (int,),
    "host": (str,),
    "failed": (dict,),
    "modal": (dict,),
    "stop_reason": (str,),  # "budget": the run stopped itself at its cap; never restart it
    "budget": (dict,),
    "restart": (dict,),  # this attempt restarted a transient failure: number, reason, checkpoint
    "restarted_as": (int,),  # the attempt that took over from this one
}
NODE_FIELDS: dict[str, tuple[type, ...]] = {
    "rank": (int,),
    "status": (str,),
    "started_at": _NUMBER,
    "ended_at": _NUMBER,
    "exit_code": (int,),
    "supervisor_pid": (int,),
    "supervisor_create_time": _NUMBER,
    "failed": (dict,),
    "processes": (dict,),
    "stop_reason": (str,),
    "budget": (dict,),
}
PROCESS_FIELDS: dict[str, tuple[type, ...]] = {
    "pid": (int,),
    "pgid": (int,),
    "create_time": _NUMBER,
    "started_at": _NUMBER,
    "ended_at": _NUMBER,
    "exit_code": (int,),
    "log": (str,),
    "role": (str,),
}


def checked(
    attempt: Attempt, name: str, data: dict[str, Any], fields: dict[str, tuple[type, ...]]
) -> dict[str, Any]:
    """`data` if every known field has its type (None meaning "not yet"), else why not.

    Readers (`vft status`, stop's pid checks) rely on these types; unknown fields are a
    backend's own and pass unchecked.
    """
    problem = _mistyped(data, fields)
    if problem is None and fields is NODE_FIELDS:
        for proc, info in (data.get("processes") or {}).items():
            inner = (
                _mistyped(info, PROCESS_FIELDS)
                if isinstance(info, dict)
                else (f"is a {_kind(info)}, not an object")
            )
            if inner is not None:
                problem = f"processes.{proc}{'' if inner.startswith('is ') else '.'}{inner}"
                break
    if problem is not None:
        raise UnreadableRecord(attempt, f"{name}: {problem}")
    return data


def _mistyped(data: dict[str, Any], fields: dict[str, tuple[type, ...]]) -> str | None:
    for key, types in fields.items():
        value = data.get(key)
        if value is None:
            continue
        bad_bool = isinstance(value, bool) and bool not in types  # JSON true is not a number
        if bad_bool or not isinstance(value, types):
            want = "a number" if types == _NUMBER else " or ".join(_TYPE_WORDS[t] for t in types)
            return f"{key} is {_kind(value)} {_clip(value)}, not {want}"
    return None


_TYPE_WORDS = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    dict: "an object",
}


def _kind(value: Any) -> str:
    words = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }
    return words.get(type(value), type(value).__name__)


def _clip(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:40] + "..."
