"""A Verifiers (0.4) environment, as the trainer uses it: tasks, prompts, and scores.

An environment package exports its `vf.Taskset` subclass through `__all__`, and a
multi-turn one also its `vf.Env` subclass, whose `run(task, agents)` drives the turns
(the Verifiers convention `vf-eval` loads). Rewards are the task's own `@vf.reward`
methods, run by `Task.score` on a trace of the conversation.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from vft.core.planning.environments import BUILTIN_ENVIRONMENTS, module_names


@dataclass
class LoadedEnvironment:
    env_id: str
    module: ModuleType
    taskset: Any  # vf.Taskset
    tasks: list[Any]  # vf.Task
    env_cls: type | None  # a vf.Env subclass for multi-turn environments

    @property
    def multi_turn(self) -> bool:
        return self.env_cls is not None


def import_module(env_id: str) -> ModuleType:
    """The environment's module: built in, or installed under one of its module names."""
    if env_id in BUILTIN_ENVIRONMENTS:
        return importlib.import_module(BUILTIN_ENVIRONMENTS[env_id])
    errors = []
    for name in module_names(env_id):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise  # the environment is there but one of its imports is not
            errors.append(name)
    raise ModuleNotFoundError(
        f"environment {env_id!r} is not installed (tried modules {', '.join(errors)}); "
        "add it to environment.install"
    )


def _exported(module: ModuleType, base: type) -> type | None:
    found = [
        obj
        for name in getattr(module, "__all__", ())
        if isinstance(obj := getattr(module, name, None), type)
        and issubclass(obj, base)
        and obj is not base
    ]
    if len(found) > 1:
        raise ValueError(f"{module.__name__} exports several {base.__name__} classes: {found}")
    return found[0] if found else None


def load(env_id: str, args: dict[str, Any] | None = None, limit: int = 10_000) -> LoadedEnvironment:
    """Import, configure (`environment.args` -> the taskset's config) and load tasks."""
    import verifiers.v1 as vf

    module = import_module(env_id)
    taskset_cls = _exported(module, vf.Taskset)
    if taskset_cls is None:
        raise TypeError(f"{module.__name__} exports no vf.Taskset subclass in __all__")
    from verifiers.v1.utils.generic import concrete_type

    config_type = concrete_type(taskset_cls, vf.TasksetConfig, origin=vf.Taskset)
    config = (config_type or vf.TasksetConfig).model_validate({"id": env_id, **(args or {})})
    taskset = taskset_cls(config)
    view = taskset if taskset.bounded else taskset.take(limit)
    tasks = list(view)
    if not tasks:
        raise ValueError(f"environment {env_id!r} loaded no tasks with args {args or {}}")
    return LoadedEnvironment(env_id, module, taskset, tasks, _exported(module, vf.Env))


def prompt_messages(task: Any) -> list[dict[str, str]]:
    """The chat messages a task opens with (system prompt first, when it has one)."""
    data = task.data
    messages: list[dict[str, str]] = []
    if data.system_prompt:
        messages.append({"role": "system", "content": data.system_prompt})
    if isinstance(data.prompt, str):
        messages.append({"role": "user", "content": data.prompt})
    else:
        for m in data.prompt or []:
            d = m.model_dump() if hasattr(m, "model_dump") else dict(m)
            messages.append({"role": d["role"], "content": d.get("content") or ""})
    return messages


def new_trace(task: Any) -> Any:
    """An empty trace of `task`, ready for messages and scoring."""
    import verifiers.v1 as vf
    from verifiers.v1.trace import AgentInfo, TraceTask

    return vf.Trace(
        task=TraceTask(type=type(task).__name__, data=task.data, key=task.key, hash=task.hash),
        agent=AgentInfo(config=vf.AgentConfig()),
    )


def append_message(trace: Any, message: dict[str, Any] | Any, *, sampled: bool) -> None:
    """Add one message to the trace's (linear) message graph."""
    from verifiers.v1.dialects import parse_message
    from verifiers.v1.graph import MessageNode

    msg = parse_message(message) if isinstance(message, dict) else message
    parent = len(trace.nodes) - 1 if trace.nodes else None
    trace.nodes.append(MessageNode(parent=parent, message=msg, sampled=sampled))


def trace_of(task: Any, messages: list[dict[str, Any]]) -> Any:
    """A trace holding a whole conversation; assistant messages count as the model's."""
    trace = new_trace(task)
    for m in messages:
        append_message(trace, m, sampled=m["role"] == "assistant")
    return trace


async def score_trace(task: Any, trace: Any) -> float:
    """Run the task's rewards on the trace; the weighted sum (rewards recorded by an
    environment's own `run()` stay in the sum)."""
    await task.score(trace)
    trace.is_completed = True
    return float(trace.reward)


def score(task: Any, messages: list[dict[str, Any]]) -> float:
    """Synchronous `score_trace` of a conversation (prompt + completion messages)."""
    return asyncio.run(score_trace(task, trace_of(task, messages)))
