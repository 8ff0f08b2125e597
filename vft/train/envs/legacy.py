"""The classic Verifiers API (`import verifiers as vf`, a module with `load_environment()`).

Public surface only: `module.load_environment(**args)` -> `vf.Environment`;
`env.get_dataset()` / `env.build_eval_dataset()`; `env.run_group(inputs, client, model,
sampling_args, state_columns=["trajectory"])` for episodes (the environment's own loop:
`SingleTurnEnv`, `MultiTurnEnv`, `ToolEnv`, ...); the rubric's `funcs` / `weights`
(`RubricGroup.rubrics`) for the reward layout, `rubric.score_group(states)` to score
replies generated elsewhere. Token ids come from the server: sampling with
`logprobs=True` and `extra_body.return_token_ids=True` makes vLLM return them, and
verifiers' client keeps them on each trajectory step (`step["tokens"]`).

A reward function that raises is logged by verifiers and scored 0.0; vft wraps each one
(same name, same signature) so that the exception ends training instead.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from types import ModuleType
from typing import Any

from vft.train.envs.base import (
    Adapter,
    EnvironmentCodeError,
    InferenceServerError,
    Result,
    Row,
    Server,
    TurnTokens,
    count_tool_calls,
    finite,
    to_openai,
)


def _merge_sampling(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in base.items() if k != "extra_body"}
    extra = dict(base.get("extra_body") or {})
    for k, v in over.items():
        if k == "extra_body":
            extra.update(v or {})
        else:
            out[k] = v
    out["extra_body"] = extra
    return out


class LegacyAdapter(Adapter):
    api = "legacy"

    def __init__(self, env_id: str, module: ModuleType, args: dict[str, Any]) -> None:
        import verifiers as vf

        super().__init__(env_id, module, args)
        self.vf = vf
        load = getattr(module, "load_environment", None)
        if not callable(load):
            raise TypeError(f"{module.__name__} has no load_environment()")
        self._load = load
        try:
            env = load(**self.args)
        except Exception as exc:
            raise self.fail(exc, called=load) from exc
        if not isinstance(env, vf.Environment):
            raise self.fail(
                TypeError(
                    f"{module.__name__}.load_environment() returned {type(env).__name__}, "
                    "not a vf.Environment"
                )
            )
        env.env_id = env.env_id or env_id
        env.env_args = env.env_args or dict(self.args)
        self.env = env
        self._reward_errors: list[BaseException] = []
        self._weights, self._metrics = self._rubric_layout(env.rubric)
        self._rows: list[Row] | None = None
        self._eval: list[Row] | bool | None = False  # False: not built yet
        self._client: Any = None
        self._client_key: Server | None = None
        self._seen_turns = 0

    # -- layout ------------------------------------------------------------------------

    def _rubric_layout(self, rubric: Any) -> tuple[dict[str, float], list[str]]:
        weights: dict[str, float] = {}
        metrics: list[str] = []

        def walk(r: Any) -> None:
            for sub in getattr(r, "rubrics", None) or []:  # RubricGroup
                walk(sub)
            funcs = getattr(r, "funcs", None) or []
            for i, (fn, w) in enumerate(
                zip(funcs, getattr(r, "weights", None) or [], strict=False)
            ):
                name = getattr(fn, "__name__", repr(fn))
                funcs[i] = self._guarded(fn)
                if w:
                    weights[name] = weights.get(name, 0.0) + float(w)
                elif name not in metrics:
                    metrics.append(name)

        walk(rubric)
        for name in list(metrics):
            if name in weights:
                metrics.remove(name)
        return weights, metrics

    def _guarded(self, fn: Any) -> Any:
        """`fn` with the same name and signature, recording an exception it raises
        (verifiers logs it and scores 0.0; vft makes it an error)."""
        if getattr(fn, "_vft_guarded", False):
            return fn
        errors = self._reward_errors

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def guarded_async(*a: Any, **kw: Any) -> Any:
                try:
                    return await fn(*a, **kw)
                except Exception as exc:
                    errors.append(exc)
                    raise

            guarded_async._vft_guarded = True  # type: ignore[attr-defined]
            return guarded_async

        @functools.wraps(fn)
        def guarded(*a: Any, **kw: Any) -> Any:
            try:
                out = fn(*a, **kw)
            except Exception as exc:
                errors.append(exc)
                raise
            if inspect.isawaitable(out):

                async def awaited() -> Any:
                    try:
                        return await out
                    except Exception as exc:
                        errors.append(exc)
                        raise

                return awaited()
            return out

        guarded._vft_guarded = True  # type: ignore[attr-defined]
        return guarded

    def _raise_reward_errors(self) -> None:
        if self._reward_errors:
            exc = self._reward_errors[0]
            self._reward_errors.clear()
            raise self.fail(exc)

    @property
    def multi_turn(self) -> bool:
        vf = self.vf
        if isinstance(self.env, vf.SingleTurnEnv):
            return False
        return getattr(self.env, "max_turns", 1) != 1

    @property
    def uses_tools(self) -> bool:
        return bool(getattr(self.env, "tool_defs", None)) or isinstance(
            self.env, self.vf.StatefulToolEnv | self.vf.ToolEnv
        )

    @property
    def offline_scorable(self) -> bool:
        """A plain single-turn environment: its rubric can score a reply generated elsewhere."""
        vf = self.vf
        env = self.env
        return (
            isinstance(env, vf.SingleTurnEnv)
            and not self.uses_tools
            and type(env).setup_state is vf.MultiTurnEnv.setup_state
            and type(env).get_prompt_messages is vf.MultiTurnEnv.get_prompt_messages
        )

    def accepted_args(self) -> list[str] | None:
        sig = inspect.signature(self._load)
        if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            return None
        return [n for n, p in sig.parameters.items() if p.kind is not p.VAR_POSITIONAL]

    def extra_facts(self) -> dict[str, Any]:
        env = self.env
        kind = next(
            (
                c.__name__
                for c in type(env).__mro__
                if c.__module__.startswith("verifiers") and c is not object
            ),
            type(env).__name__,
        )
        sandbox = [
            c.__name__ for c in type(env).__mro__ if c.__name__ in ("SandboxEnv", "CliAgentEnv")
        ]
        sampling = {k: v for k, v in (env.sampling_args or {}).items() if k not in ("n",) and v}
        return {
            "env_class": type(env).__name__,
            "verifiers_class": kind,
            "max_turns": getattr(env, "max_turns", None),
            "remote_sandbox": bool(sandbox),
            "sampling_args": sampling,
        }

    # -- rows --------------------------------------------------------------------------

    def _to_rows(self, ds: Any, split: str) -> list[Row]:
        rows = []
        for i, r in enumerate(ds):
            prompt = [to_openai(m) for m in r.get("prompt") or []]
            rows.append(Row(split, i, prompt, dict(r)))
        return rows

    def rows(self) -> list[Row]:
        if self._rows is None:
            try:
                ds = self.env.get_dataset()
            except Exception as exc:
                raise self.fail(exc) from exc
            self._rows = self._to_rows(ds, "train")
        return self._rows

    def eval_rows(self) -> list[Row] | None:
        if self._eval is False:
            try:
                ds = self.env.build_eval_dataset()
            except Exception as exc:
                raise self.fail(exc) from exc
            self._eval = None if ds is None else self._to_rows(ds, "eval")
        return self._eval  # type: ignore[return-value]

    def _input(self, row: Row) -> dict[str, Any]:
        data = dict(row.data or {})
        data.setdefault("example_id", row.index)
        return data

    # -- episodes ----------------------------------------------------------------------

    def _vf_client(self, server: Server) -> Any:
        if self._client is None or self._client_key != server:
            from openai import AsyncOpenAI

            oai = AsyncOpenAI(
                base_url=server.base_url, api_key=server.api_key, max_retries=2, timeout=3600
            )
            self._client = self.vf.OpenAIChatCompletionsClient(oai)
            self._client_key = server
        return self._client

    def sampling_for(self, sampling: dict[str, Any]) -> dict[str, Any]:
        """The environment's sampling args, then vft's (temperature, the episode's token
        budget as each turn's cap), then token ids. A per-turn cap the environment sets
        itself stays when it is the smaller."""
        over = dict(sampling)
        own = dict(self.env.sampling_args or {})
        cap = own.get("max_tokens") or own.get("max_completion_tokens")
        if cap and over.get("max_tokens"):
            over["max_tokens"] = min(int(cap), int(over["max_tokens"]))
        over["logprobs"] = True
        over["extra_body"] = {**(sampling.get("extra_body") or {}), "return_token_ids": True}
        return _merge_sampling(dict(self.env.sampling_args or {}), over)

    def _check_error(self, out: dict[str, Any]) -> None:
        err = out.get("error")
        if not err:
            return
        vf = self.vf
        if isinstance(err, BaseException):
            if isinstance(err, vf.InvalidModelResponseError | vf.OverlongPromptError):
                return  # the model's own answer was unusable: the episode's outcome
            if isinstance(err, vf.ToolError):
                return  # the environment chose to stop on a tool error (stop_errors)
            if isinstance(err, vf.ModelError):
                cause = err.__cause__ or err
                raise InferenceServerError(f"{type(cause).__name__}: {cause}") from err
            raise self.fail(err)
        if isinstance(err, dict):
            kind = str(err.get("error") or err.get("type") or "")
            if kind in (
                "InvalidModelResponseError",
                "EmptyModelResponseError",
                "OverlongPromptError",
            ):
                return
            if kind.startswith("Tool"):
                return
            text = err.get("error_chain_str") or f"{kind}: {err.get('message')}"
            if kind == "ModelError":
                raise InferenceServerError(str(text))
            raise EnvironmentCodeError(self.env_id, RuntimeError(str(text)), self.source)
        raise EnvironmentCodeError(self.env_id, RuntimeError(str(err)), self.source)

    def _result(self, out: dict[str, Any]) -> Result:
        self._check_error(out)
        all_metrics = dict(out.get("metrics") or {})
        completion = [to_openai(m) for m in out.get("completion") or []]
        traj = out.get("trajectory") or []
        turns: list[TurnTokens] | None = None
        if traj and all(s.get("tokens") for s in traj):
            turns = [
                TurnTokens(
                    list(s["tokens"]["prompt_ids"]),
                    list(s["tokens"]["completion_ids"]),
                    list(s["tokens"].get("completion_logprobs") or []),
                )
                for s in traj
            ]
        rewards = {k: finite(all_metrics.get(k)) for k in self._weights}
        metrics = {k: finite(v) for k, v in all_metrics.items() if k not in self._weights}
        return Result(
            reward=finite(out.get("reward")),
            rewards=rewards,
            metrics=metrics,
            turns=len(traj) if traj else int(all_metrics.get("num_turns", 1) or 1),
            tool_calls=count_tool_calls(completion),
            completion=completion,
            turn_tokens=turns,
            truncated=bool(out.get("is_truncated")),
        )

    async def rollout_group(
        self, row: Row, n: int, server: Server, sampling: dict[str, Any]
    ) -> list[Result]:
        sa = self.sampling_for(sampling)
        budget = sampling.get("max_tokens")
        if budget and hasattr(self.env, "set_max_total_completion_tokens"):
            self.env.set_max_total_completion_tokens(int(budget))
        try:
            outs = await self.env.run_group(
                [self._input(row) for _ in range(n)],
                self._vf_client(server),
                server.model,
                sa,
                state_columns=["trajectory"],
            )
        except (EnvironmentCodeError, InferenceServerError):
            raise
        except Exception as exc:
            self._raise_reward_errors()
            raise self.fail(exc) from exc
        self._raise_reward_errors()
        return [self._result(dict(o)) for o in outs]

    async def score_group(self, row: Row, replies: list[str]) -> list[Result]:
        if not self.offline_scorable:
            raise RuntimeError(f"{self.env_id}: episodes run the environment's loop on a server")
        vf = self.vf
        from openai import AsyncOpenAI

        idle = vf.OpenAIChatCompletionsClient(
            AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="unused", max_retries=0)
        )
        try:
            states = []
            for reply in replies:
                state = await self.env.init_state(self._input(row), idle, "vft")
                message = vf.AssistantMessage(content=reply)
                state["completion"] = [message]
                state["trajectory"] = [
                    {
                        "prompt": state["prompt"],
                        "completion": [message],
                        "response": None,
                        "tokens": None,
                        "reward": None,
                        "advantage": None,
                        "is_truncated": False,
                        "trajectory_id": state["trajectory_id"],
                        "extras": {},
                    }
                ]
                state["is_completed"] = True
                states.append(state)
            await self.env.rubric.score_group(states)
        except (EnvironmentCodeError, InferenceServerError):
            raise
        except Exception as exc:
            self._raise_reward_errors()
            raise self.fail(exc) from exc
        self._raise_reward_errors()
        return [
            self._result(
                {
                    "completion": s["completion"],
                    "reward": s["reward"],
                    "metrics": s["metrics"],
                    "trajectory": [],
                }
            )
            for s in states
        ]

    async def aclose(self) -> None:
        await asyncio.sleep(0)
