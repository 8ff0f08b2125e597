"""What every environment adapter offers the trainer, whatever the Verifiers API behind it.

An adapter wraps one loaded environment (`legacy.py`: the classic `import verifiers as
vf` API, `v1.py`: `verifiers.v1`) and answers, on their public surfaces only:

- facts: single- or multi-turn, tools, agent seats, the eval split, the reward functions
  with their weights and the metrics (`facts()`, printed by `describe.py`);
- rows: the training prompts (`rows()`) and the eval ones (`eval_rows()`);
- `rollout_group(row, n, server, sampling)`: `n` episodes of the environment's own loop
  against an OpenAI-compatible server, each with its per-turn token ids;
- `score_group(row, replies)`: the rubric / task score of replies generated elsewhere
  (single-turn environments only: a multi-turn one is its loop).

Any exception raised by the environment's code surfaces as `EnvironmentCodeError`, whose
`line()` is the one line the trainer prints before it exits 1.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import sys
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeVar

Api = Literal["legacy", "v1"]

#: where vft's and verifiers' own frames live: never "the environment's code"
_NOT_ENV_CODE = (str(Path(__file__).resolve().parents[2]),)

_E = TypeVar("_E", bound=BaseException)


# ---------------------------------------------------------------------------- errors


class EnvironmentCodeError(Exception):
    """An exception raised by an environment's code (loading, its loop, a reward function)."""

    def __init__(self, env_id: str, exc: BaseException, where: str | None = None) -> None:
        self.env_id = env_id
        self.exc = exc
        self.where = where or location(exc)
        super().__init__(self.line())

    def line(self) -> str:
        """`environment ENV_ID: <ExceptionType>: <message> (at <file>:<line>)`."""
        message = " ".join(str(self.exc).split()) or "(no message)"
        at = f" (at {self.where})" if self.where else ""
        kind = getattr(self.exc, "kind", None) or type(self.exc).__name__
        return f"environment {self.env_id}: {kind}: {message}{at}"


class InferenceServerError(Exception):
    """The inference server failed a request (not the environment's fault)."""


def root_cause(exc: BaseException) -> BaseException:
    """The innermost `raise ... from` cause: the exception the environment raised."""
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def location(exc: BaseException, roots: Iterable[str] = ()) -> str | None:
    """`file:line` of the frame that raised `exc`: the deepest frame under one of `roots`
    (the environment's package), else the deepest outside vft, verifiers and the standard
    library, else the deepest of all."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return None
    roots = tuple(str(Path(r).resolve()) for r in roots)

    def ours(filename: str) -> bool:
        f = os.path.abspath(filename)
        return (
            f.startswith(_NOT_ENV_CODE)
            or f"{os.sep}verifiers{os.sep}" in f
            or f.startswith(sys.base_prefix)
            or f.startswith(sys.prefix + os.sep + "lib")
            or filename.startswith("<")
        )

    pick = None
    if roots:
        pick = next(
            (f for f in reversed(frames) if os.path.abspath(f.filename).startswith(roots)), None
        )
    if pick is None:
        pick = next((f for f in reversed(frames) if not ours(f.filename)), None)
    pick = pick or frames[-1]
    return f"{pick.filename}:{pick.lineno}"


def find_in_chain(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first `kind` in `exc`'s cause/context chain (and exception groups), if any."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, kind):
            return e
        stack += [e.__cause__, e.__context__]
        stack += list(getattr(e, "exceptions", ()) or ())
    return None


def find_environment_error(exc: BaseException) -> EnvironmentCodeError | None:
    """The EnvironmentCodeError in `exc`'s cause/context chain, if any."""
    return find_in_chain(exc, EnvironmentCodeError)


# ---------------------------------------------------------------------------- data


@dataclass
class Row:
    """One prompt of a split: the messages the episode opens with (OpenAI chat dicts;
    empty when the environment writes the opening itself) and the adapter's own data."""

    split: str
    index: int
    prompt: list[dict[str, Any]]
    data: Any = None

    @property
    def key(self) -> str:
        return f"{self.split}:{self.index}"


@dataclass
class TurnTokens:
    """One model call: the prompt it saw and the tokens it sampled, as the server tokenized."""

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float | None]


@dataclass
class Sample:
    """One TRL sample: the first prompt, then every later token, the model's marked 1."""

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float | None]
    env_mask: list[int]
    complete: bool = True  # False: a later turn's prompt rewrote history; cut there


@dataclass
class Result:
    """One scored episode."""

    reward: float
    rewards: dict[str, float]  # reward function -> unweighted score
    metrics: dict[str, float]
    turns: int = 1
    tool_calls: int = 0
    completion: list[dict[str, Any]] = field(default_factory=list)
    turn_tokens: list[TurnTokens] | None = None
    truncated: bool = False
    untrained: float = 0.0  # 1: no token ids came back, 0.5: only the turns before a cut

    def sample(self) -> Sample | None:
        return stitch(self.turn_tokens) if self.turn_tokens else None


def stitch(turns: list[TurnTokens]) -> Sample:
    """Per-turn token records -> one sequence with the environment's tokens masked out.

    Valid while each turn's prompt extends the previous prompt + completion (an
    append-only chat template); at the first turn that does not (the template rewrote
    history), the sample stops: the turns before are trained, the rest are not.
    """
    seq = list(turns[0].prompt_ids)
    comp: list[int] = []
    mask: list[int] = []
    lps: list[float | None] = []
    complete = True
    for k, t in enumerate(turns):
        if k:
            if t.prompt_ids[: len(seq)] != seq:
                complete = False
                break
            env_part = t.prompt_ids[len(seq) :]
            comp += env_part
            mask += [0] * len(env_part)
            lps += [None] * len(env_part)
            seq += env_part
        comp += t.completion_ids
        mask += [1] * len(t.completion_ids)
        lp = list(t.logprobs)[: len(t.completion_ids)]
        lps += lp + [None] * (len(t.completion_ids) - len(lp))
        seq += t.completion_ids
    return Sample(list(turns[0].prompt_ids), comp, lps, mask, complete)


@dataclass(frozen=True)
class Server:
    """An OpenAI-compatible endpoint: `base_url` ends in /v1."""

    base_url: str
    model: str
    api_key: str = "EMPTY"


# ---------------------------------------------------------------------------- messages


def _get(m: Any, key: str, default: Any = None) -> Any:
    return m.get(key, default) if isinstance(m, dict) else getattr(m, key, default)


def to_openai(m: Any) -> dict[str, Any]:
    """A verifiers (classic or v1) message, pydantic or dict -> an OpenAI chat dict."""
    role = _get(m, "role")
    content = _get(m, "content")
    if content is not None and not isinstance(content, str | dict):
        content = [
            p.model_dump(exclude_none=True) if hasattr(p, "model_dump") else p for p in content
        ]
    out: dict[str, Any] = {"role": role, "content": content}
    if role == "assistant":
        calls = []
        for c in _get(m, "tool_calls") or []:
            if isinstance(c, str):
                c = json.loads(c)
            fn = _get(c, "function")
            name = _get(fn, "name") if fn else _get(c, "name")
            args = _get(fn, "arguments") if fn else _get(c, "arguments")
            calls.append(
                {
                    "id": _get(c, "id"),
                    "type": "function",
                    "function": {"name": name, "arguments": args},
                }
            )
        if calls:
            out["tool_calls"] = calls
    if role == "tool":
        out["tool_call_id"] = _get(m, "tool_call_id")
    return out


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(_get(p, "text", "") or "") for p in content)
    return ""


def count_tool_calls(messages: list[dict[str, Any]]) -> int:
    return sum(len(m.get("tool_calls") or []) for m in messages if m.get("role") == "assistant")


def finite(value: Any) -> float:
    """A score as a float; NaN for anything that is not a finite number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


# ---------------------------------------------------------------------------- adapter


class Adapter(ABC):
    """One loaded environment, on the public surface of its Verifiers API."""

    api: Api
    env_id: str
    source: str | None  # the environment module's file
    _weights: dict[str, float]  # reward function name -> weight, set by the subclass
    _metrics: list[str]  # logged signals that are not part of the reward

    def __init__(self, env_id: str, module: ModuleType, args: dict[str, Any]) -> None:
        self.env_id = env_id
        self.module = module
        self.source = getattr(module, "__file__", None)
        self.args = dict(args)

    @property
    @abstractmethod
    def multi_turn(self) -> bool:
        """Whether an episode may take more than one model turn (its loop must run)."""

    @property
    @abstractmethod
    def uses_tools(self) -> bool:
        """Whether the model is offered tools (native OpenAI tool calls)."""

    @property
    @abstractmethod
    def offline_scorable(self) -> bool:
        """Whether a reply generated elsewhere (by TRL) can be scored without running the
        environment's own loop: single-turn, no tools, no per-episode setup."""

    @property
    def needs_server(self) -> bool:
        """Whether episodes must run the environment's loop against a server."""
        return not self.offline_scorable

    @property
    def agents(self) -> list[str]:
        """The seats a policy plays in one episode."""
        return ["agent"]

    @property
    def reward_weights(self) -> dict[str, float]:
        """Reward function name -> weight; the environment's total is the weighted sum."""
        return dict(self._weights)

    @property
    def metric_names(self) -> list[str]:
        """Logged signals that are not part of the reward."""
        return list(self._metrics)

    @abstractmethod
    def rows(self) -> list[Row]: ...

    @abstractmethod
    def eval_rows(self) -> list[Row] | None:
        """The eval split's rows; None when the environment has no eval split."""

    def accepted_args(self) -> list[str] | None:
        """`environment.args` names the environment accepts; None: anything."""
        return None

    def extra_facts(self) -> dict[str, Any]:
        return {}

    def facts(self) -> dict[str, Any]:
        """What `vft plan` needs to know, JSON-ready (see describe.py)."""
        ev = self.eval_rows()
        return {
            "id": self.env_id,
            "api": self.api,
            "multi_turn": self.multi_turn,
            "uses_tools": self.uses_tools,
            "needs_server": self.needs_server,
            "agents": self.agents,
            "eval_split": {"present": ev is not None, "size": len(ev) if ev is not None else 0},
            "train_size": len(self.rows()),
            "rewards": [{"name": k, "weight": w} for k, w in self.reward_weights.items()],
            "metrics": list(self.metric_names),
            "accepted_args": self.accepted_args(),
            "source": self.source,
            **self.extra_facts(),
        }

    @abstractmethod
    async def rollout_group(
        self, row: Row, n: int, server: Server, sampling: dict[str, Any]
    ) -> list[Result]:
        """`n` episodes of `row` through the environment's own loop, with token ids."""

    @abstractmethod
    async def score_group(self, row: Row, replies: list[str]) -> list[Result]:
        """Score replies generated elsewhere (single-turn environments only)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what the adapter started (tool servers, proxies)."""

    def fail(self, exc: BaseException, called: Any = None) -> EnvironmentCodeError:
        """`exc`, raised by the environment's code, as an EnvironmentCodeError. `called`:
        the environment's function vft called, named when the call itself failed (bad
        arguments) rather than a frame inside it."""
        if isinstance(exc, EnvironmentCodeError):
            return exc
        cause = root_cause(exc)
        roots = [str(Path(self.source).parent)] if self.source else []
        where = location(cause, roots)
        if called is not None and (where is None or where.startswith(_NOT_ENV_CODE)):
            with contextlib.suppress(TypeError, OSError):
                where = f"{inspect.getsourcefile(called)}:{inspect.getsourcelines(called)[1]}"
        return EnvironmentCodeError(self.env_id, cause, where)
