"""Multi-turn rollouts: an environment's own `run(task, agents)` loop, played by the policy.

A Verifiers 0.4 multi-turn environment drives an episode through
`agents.<role>.interaction(task)` and `await interaction.turn(message)`. vft supplies
that agent surface: each turn the policy answers (the trainer's vLLM server, or a script
in tests), and the conversation is kept as one token stream, so TRL trains on exactly
the tokens the model sampled (environment turns masked out via `env_mask`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vft.train.environment import LoadedEnvironment, append_message, new_trace, score_trace

TASK_KEY = "vft_task"  # the task index, carried on prompt messages (rollout_func sees only prompts)
DEFAULT_MAX_TURNS = 16


@dataclass
class Conversation:
    """One episode's messages and, when a tokenizer is involved, its token stream."""

    task: Any
    trace: Any
    messages: list[dict[str, str]]
    max_turns: int
    turns: int = 0
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)  # 1: sampled by the model
    logprobs: list[float] = field(default_factory=list)
    exhausted: bool = False  # the token budget ran out


class Policy(Protocol):
    async def respond(self, conv: Conversation) -> str | None:
        """The assistant's next message, or None when it cannot answer (budget spent)."""


class ScriptedPolicy:
    """Replies from a list, in order: known-good and known-bad players for tests."""

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)

    async def respond(self, conv: Conversation) -> str | None:
        return self.replies.pop(0) if self.replies else None


class Interaction:
    """The `vf.Interaction` surface an environment's `run()` uses: `turn()` and `trace`."""

    def __init__(self, conv: Conversation, policy: Policy) -> None:
        self.conv = conv
        self.policy = policy
        self._over = False

    @property
    def trace(self) -> Any:
        return self.conv.trace

    async def turn(self, message: str | list[Any] | None = None) -> Any:
        import verifiers.v1 as vf

        conv = self.conv
        if self._over or conv.turns >= conv.max_turns or conv.exhausted:
            self._over = True
            return vf.Segment(messages=[], terminated=True)
        if message is not None:
            items = [{"role": "user", "content": message}] if isinstance(message, str) else message
            for m in items:
                m = m if isinstance(m, dict) else m.model_dump()
                user = {"role": m["role"], "content": m.get("content") or ""}
                conv.messages.append(user)
                append_message(conv.trace, user, sampled=False)
        reply = await self.policy.respond(conv)
        if reply is None:
            self._over = True
            return vf.Segment(messages=[], terminated=True)
        conv.turns += 1
        assistant = {"role": "assistant", "content": reply}
        conv.messages.append(assistant)
        append_message(conv.trace, assistant, sampled=True)
        return vf.Segment(messages=[conv.trace.nodes[-1].message])


class Agent:
    """One seat of the environment, played by the policy."""

    def __init__(self, policy: Policy, conv_factory: Callable[[Any], Conversation]) -> None:
        self.policy = policy
        self.conv_factory = conv_factory
        self.conversations: list[Conversation] = []

    @contextlib.asynccontextmanager
    async def interaction(self, task: Any, **_: Any) -> AsyncIterator[Interaction]:
        conv = self.conv_factory(task)
        self.conversations.append(conv)
        yield Interaction(conv, self.policy)

    async def run(self, task: Any, **_: Any) -> Any:
        """A single-seat run with no user turns: one answer to the prompt."""
        async with self.interaction(task) as inter:
            await inter.turn()
        return inter.trace


class Agents:
    """`agents.<role>`: every seat is the policy being trained."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    def __getattr__(self, name: str) -> Agent:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._agent


def make_env(loaded: LoadedEnvironment, args: dict[str, Any] | None = None) -> Any:
    """The environment's `vf.Env`, built from its own config type."""
    import verifiers.v1 as vf

    config = vf.resolve_env_config({"taskset": {"id": loaded.env_id, **(args or {})}})
    assert loaded.env_cls is not None
    return loaded.env_cls(config)


async def run_episode(
    env: Any,
    task: Any,
    policy: Policy,
    *,
    max_turns: int = DEFAULT_MAX_TURNS,
    start: Callable[[Conversation], None] | None = None,
) -> Conversation:
    """Play one episode of `task` with the environment's own `run()`, then score it."""

    def factory(t: Any) -> Conversation:
        from vft.train.environment import prompt_messages

        conv = Conversation(t, new_trace(t), [], max_turns)
        for m in prompt_messages(t):
            conv.messages.append(m)
            append_message(conv.trace, m, sampled=False)
        if start is not None:
            start(conv)
        return conv

    agent = Agent(policy, factory)
    await env.run(task, Agents(agent))
    if not agent.conversations:
        raise RuntimeError(f"{type(env).__name__}.run() opened no interaction")
    conv = agent.conversations[-1]
    await score_trace(task, conv.trace)
    return conv


class ServerPolicy:
    """Generates each turn on the plan's vLLM server from token ids, keeping the stream."""

    def __init__(self, tokenizer: Any, base_url: str, *, max_tokens: int, temperature: float):
        self.tok = tokenizer
        self.base_url = base_url.rstrip("/")
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._model: str | None = None

    def start(self, conv: Conversation) -> None:
        conv.prompt_ids = self._render(conv.messages, generation=True)

    def _render(self, messages: list[dict[str, str]], generation: bool) -> list[int]:
        text = self.tok.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation
        )
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def _extend_with_env_turn(self, conv: Conversation) -> None:
        """Tokens of the environment's new messages, as the chat template renders them."""
        last = max(i for i, m in enumerate(conv.messages) if m["role"] == "assistant")
        before = self.tok.apply_chat_template(
            conv.messages[:last], tokenize=False, add_generation_prompt=True
        )
        prefix = before + conv.messages[last]["content"]
        full = self.tok.apply_chat_template(
            conv.messages, tokenize=False, add_generation_prompt=True
        )
        delta = full[len(prefix) :] if full.startswith(prefix) else None
        if (
            delta is None
        ):  # the template rewrites history (e.g. drops reasoning): render the turn alone
            tail = [m for m in conv.messages[last + 1 :]]
            delta = self.tok.apply_chat_template(tail, tokenize=False, add_generation_prompt=True)
        ids = self.tok(delta, add_special_tokens=False)["input_ids"]
        eos = self.tok.eos_token_id
        if conv.completion_ids and conv.completion_ids[-1] == eos and ids and ids[0] == eos:
            ids = ids[1:]
        conv.completion_ids += ids
        conv.env_mask += [0] * len(ids)
        conv.logprobs += [0.0] * len(ids)

    async def respond(self, conv: Conversation) -> str | None:
        if conv.turns:
            self._extend_with_env_turn(conv)
        budget = self.max_tokens - sum(conv.env_mask)
        if budget <= 0:
            conv.exhausted = True
            return None
        ids, logprobs = await asyncio.to_thread(
            self._generate, conv.prompt_ids + conv.completion_ids, budget
        )
        conv.completion_ids += ids
        conv.env_mask += [1] * len(ids)
        conv.logprobs += logprobs
        if len(ids) >= budget:
            conv.exhausted = True
        return self.tok.decode(ids, skip_special_tokens=True)

    def _post(self, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=600) as resp:
            return json.loads(resp.read())

    def _generate(self, ids: list[int], max_tokens: int) -> tuple[list[int], list[float]]:
        if self._model is None:
            self._model = self._post("/v1/models")["data"][0]["id"]
        body = {
            "model": self._model,
            "prompt": [ids],
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "logprobs": 0,
            "return_token_ids": True,
            "return_tokens_as_token_ids": True,
        }
        choice = self._post("/v1/completions", body)["choices"][0]
        lps = (choice.get("logprobs") or {}).get("token_logprobs") or [0.0] * len(
            choice["token_ids"]
        )
        return list(choice["token_ids"]), [0.0 if lp is None else float(lp) for lp in lps]


def rollout_func(
    loaded: LoadedEnvironment,
    env: Any,
    tokenizer: Any,
    base_url: str,
    *,
    max_tokens: int,
    temperature: float,
    max_turns: int = DEFAULT_MAX_TURNS,
) -> Callable[[list[Any], Any], dict[str, list[Any]]]:
    """TRL's `rollout_func(prompts, trainer)`: one episode per prompt of this process."""
    policy = ServerPolicy(tokenizer, base_url, max_tokens=max_tokens, temperature=temperature)

    def rollout(prompts: list, trainer: Any) -> dict[str, list]:
        tasks = [loaded.tasks[int(p[0][TASK_KEY])] for p in prompts]

        async def all_episodes() -> list[Conversation]:
            return await asyncio.gather(
                *(
                    run_episode(env, t, policy, max_turns=max_turns, start=policy.start)
                    for t in tasks
                )
            )

        convs = asyncio.run(all_episodes())
        return {
            "prompt_ids": [c.prompt_ids for c in convs],
            "completion_ids": [c.completion_ids or [tokenizer.eos_token_id] for c in convs],
            "logprobs": [c.logprobs or [0.0] for c in convs],
            "env_mask": [c.env_mask or [0] for c in convs],
            "vft_reward": [float(c.trace.reward) for c in convs],
        }

    return rollout
