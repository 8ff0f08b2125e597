"""An environment adapter as TRL 1.16's `GRPOTrainer` takes it.

Two ways to generate, chosen by the trainer:

- **rollout** (a plan with an inference server): TRL's `rollout_func(prompts, trainer)`
  runs the environment's own loop for every prompt (`adapter.rollout_group`, one call per
  group of `num_generations` consecutive duplicates) against the server, and stitches
  each episode's per-turn token ids into `prompt_ids` / `completion_ids` / `logprobs`,
  with `env_mask` 0 on the tokens the environment (user turns, tool results) inserted.
  The dataset's prompt is only the row's key; the episode's real opening comes from the
  environment.
- **score** (single-turn environments, generating in the trainer or through TRL's own
  vLLM path): the dataset's prompt is the row's messages, TRL generates the reply, and
  the environment's rubric / task scores it (`adapter.score_group`).

Rewards: one TRL reward function per reward function of the environment, weighted with
`GRPOConfig.reward_weights` = the environment's weights, so TRL's weighted sum is the
environment's own total (checked on every episode) and each component is logged by
name; metrics and episode counters are reward functions of weight 0 (logged, not
summed). `metric_names()` maps TRL's log keys to the stable names of metrics.jsonl.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import threading
import urllib.request
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from vft.train.envs.base import (
    Adapter,
    EnvironmentCodeError,
    Result,
    Row,
    Sample,
    Server,
)

ROW_KEY = "vft_row"
RESULT_KEY = "vft_result"
_T = TypeVar("_T")


class RewardMismatch(Exception):
    """The environment's total is not the weighted sum of its reward functions."""


class LoopThread:
    """One long-lived event loop in a daemon thread: the environment's clients, tool
    servers and proxies live on it across TRL's (synchronous) calls."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="vft-env")
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def discover_server(url: str, timeout: float = 30.0) -> Server:
    """The OpenAI-compatible endpoint at `url` (`http://HOST:PORT`) and the model it serves."""
    base = url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    with urllib.request.urlopen(base + "/models", timeout=timeout) as resp:
        model = json.loads(resp.read())["data"][0]["id"]
    return Server(base, model)


def _none_if_nan(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


class TrlGlue:
    """Dataset rows, reward functions with weights and a `rollout_func` for one adapter."""

    def __init__(
        self,
        adapter: Adapter,
        *,
        rollout: bool,
        sampling: dict[str, Any] | None = None,
        server: Server | Callable[[], Server] | None = None,
        tokenizer: Any = None,
        loop: LoopThread | None = None,
    ) -> None:
        if not rollout and adapter.needs_server:
            raise ValueError(f"{adapter.env_id}: its episodes need an inference server")
        self.adapter = adapter
        self.rollout = rollout
        self.sampling = dict(sampling or {})
        self._server = server
        self.tokenizer = tokenizer
        self.loop = loop or LoopThread()
        self.weights = dict(adapter.reward_weights)
        self.metrics = [m for m in adapter.metric_names if m not in self.weights]
        self._rows: dict[str, Row] = {}
        self._cache: tuple[Any, list[Result]] | None = None

    # -- rows --------------------------------------------------------------------------

    def _index(self, rows: list[Row]) -> list[Row]:
        for r in rows:
            self._rows[r.key] = r
        return rows

    def _dataset(self, rows: list[Row]) -> list[dict[str, Any]]:
        if self.rollout:
            return [{"prompt": [{"role": "user", "content": r.key}], ROW_KEY: r.key} for r in rows]
        out = []
        for r in rows:
            if not r.prompt:
                raise EnvironmentCodeError(
                    self.adapter.env_id,
                    ValueError(f"{r.key} has no prompt: the environment writes the opening turn"),
                    self.adapter.source,
                )
            out.append({"prompt": r.prompt, ROW_KEY: r.key})
        return out

    def train_dataset(self) -> list[dict[str, Any]]:
        return self._dataset(self._index(self.adapter.rows()))

    def eval_dataset(self) -> list[dict[str, Any]] | None:
        rows = self.adapter.eval_rows()
        return None if rows is None else self._dataset(self._index(rows))

    def row(self, key: str) -> Row:
        if key not in self._rows:
            self._index(self.adapter.rows())
            self._index(self.adapter.eval_rows() or [])
        return self._rows[key]

    # -- rewards -----------------------------------------------------------------------

    def _episode_names(self) -> list[str]:
        names = ["episode/turns", "episode/tool_calls"]
        return [*names, "episode/untrained"] if self.rollout else names

    def reward_weights(self) -> list[float]:
        return [*self.weights.values(), *([0.0] * (len(self.metrics) + len(self._episode_names())))]

    def metric_names(self) -> dict[str, str]:
        """TRL reward-function name -> the stable name metrics.jsonl uses."""
        out = {name: f"reward/{name}" for name in self.weights}
        out |= {f"metric/{name}": f"metric/{name}" for name in self.metrics}
        out |= {name: name for name in self._episode_names()}
        return out

    def check_total(self, r: Result) -> None:
        if math.isnan(r.reward):
            return
        total = sum(
            w * (0.0 if math.isnan(s := r.rewards.get(k, math.nan)) else s)
            for k, w in self.weights.items()
        )
        if abs(total - r.reward) > 1e-4 * max(1.0, abs(r.reward)):
            extra = sorted(set(r.rewards) - set(self.weights))
            why = f" (it also scored {', '.join(extra)})" if extra else ""
            raise EnvironmentCodeError(
                self.adapter.env_id,
                RewardMismatch(
                    f"its total reward {r.reward:.6g} is not the weighted sum of its reward "
                    f"functions ({total:.6g}){why}; vft cannot train it faithfully"
                ),
                self.adapter.source,
            )

    def _results(self, completions: Any, kwargs: dict[str, Any]) -> list[Result]:
        if RESULT_KEY in kwargs:
            return list(kwargs[RESULT_KEY])
        if self._cache is not None and self._cache[0] is completions:
            return self._cache[1]
        keys = list(kwargs[ROW_KEY])
        replies = [_reply_text(c) for c in completions]

        async def score_all() -> list[Result]:
            groups = [
                (k, [i for i, _ in grp])
                for k, grp in itertools.groupby(enumerate(keys), key=lambda x: x[1])
            ]
            scored = await asyncio.gather(
                *(
                    self.adapter.score_group(self.row(k), [replies[i] for i in idx])
                    for k, idx in groups
                )
            )
            out: list[Result | None] = [None] * len(keys)
            for (_, idx), results in zip(groups, scored, strict=True):
                for i, r in zip(idx, results, strict=True):
                    out[i] = r
            return [r for r in out if r is not None]

        results = self.loop.run(score_all())
        for r in results:
            self.check_total(r)
        self._cache = (completions, results)
        return results

    def reward_funcs(self) -> list[Callable[..., list[float | None]]]:
        def make(name: str, pick: Callable[[Result], float | None]) -> Callable[..., Any]:
            def signal(prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[Any]:
                return [_none_if_nan(pick(r)) for r in self._results(completions, kwargs)]

            signal.__name__ = name
            signal.__qualname__ = name
            return signal

        def reward(n: str) -> Callable[[Result], float | None]:
            return lambda r: r.rewards.get(n)

        def metric(n: str) -> Callable[[Result], float | None]:
            return lambda r: r.metrics.get(n)

        funcs = [make(n, reward(n)) for n in self.weights]
        funcs += [make(f"metric/{n}", metric(n)) for n in self.metrics]
        episode: dict[str, Callable[[Result], float | None]] = {
            "episode/turns": lambda r: float(r.turns),
            "episode/tool_calls": lambda r: float(r.tool_calls),
            "episode/untrained": lambda r: r.untrained,
        }
        funcs += [make(n, episode[n]) for n in self._episode_names()]
        return funcs

    # -- rollouts ----------------------------------------------------------------------

    @property
    def server(self) -> Server:
        if callable(self._server):
            self._server = self._server()
        if self._server is None:
            raise RuntimeError("rollouts need an inference server")
        return self._server

    def _fallback(self, row: Row) -> Sample:
        """An episode without token ids (the model's reply was unusable before any token
        came back): kept for its reward, trained on nothing."""
        tok = self.tokenizer
        eos = getattr(tok, "eos_token_id", None) or 0
        prompt: list[int] = [eos]
        if tok is not None and row.prompt:
            try:
                ids = tok.apply_chat_template(row.prompt, add_generation_prompt=True, tokenize=True)
                ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
                prompt = list(ids) or prompt
            except Exception:  # a template that rejects the messages: keep the stub
                pass
        return Sample(prompt, [eos], [None], [0], complete=False)

    def rollout_func(self, prompts: list[Any], trainer: Any = None) -> dict[str, list[Any]]:
        keys = [_row_key(p) for p in prompts]
        server = self.server

        async def run_all() -> list[Result]:
            groups = [
                (k, [i for i, _ in grp])
                for k, grp in itertools.groupby(enumerate(keys), key=lambda x: x[1])
            ]
            done = await asyncio.gather(
                *(
                    self.adapter.rollout_group(self.row(k), len(idx), server, self.sampling)
                    for k, idx in groups
                )
            )
            out: list[Result | None] = [None] * len(keys)
            for (_, idx), results in zip(groups, done, strict=True):
                for i, r in zip(idx, results, strict=True):
                    out[i] = r
            return [r for r in out if r is not None]

        results = self.loop.run(run_all())
        batch: dict[str, list[Any]] = {
            "prompt_ids": [],
            "completion_ids": [],
            "logprobs": [],
            "env_mask": [],
            RESULT_KEY: [],
        }
        for key, r in zip(keys, results, strict=True):
            self.check_total(r)
            s = r.sample()
            if s is None or not s.completion_ids:
                s = self._fallback(self.row(key))
                r.untrained = 1.0
            elif not s.complete:
                r.untrained = 0.5
            batch["prompt_ids"].append(s.prompt_ids)
            batch["completion_ids"].append(s.completion_ids)
            batch["logprobs"].append(s.logprobs)
            batch["env_mask"].append(s.env_mask)
            batch[RESULT_KEY].append(r)
        return batch

    def close(self) -> None:
        try:
            self.loop.run(self.adapter.aclose())
        finally:
            self.loop.close()


def _row_key(prompt: Any) -> str:
    if isinstance(prompt, list) and prompt:
        first = prompt[0]
        return str(first.get("content") if isinstance(first, dict) else first)
    return str(prompt)


def _reply_text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        for m in reversed(completion):
            if isinstance(m, dict) and m.get("role") == "assistant":
                c = m.get("content")
                return c if isinstance(c, str) else ""
    return ""
