"""`verifiers.v1`: tasksets of tasks with `@vf.reward` / `@vf.metric`, toolsets, an `Env`.

Public surface only: `vf.resolve_env_config` / `vf.load_environment` build the
environment (the taskset's own `Env` subclass, else `SingleAgentEnv`); its tasks are
`list(env.taskset)`. An episode is `env.run_episode(task, vf.ModelContext(...))` inside
`env.serving()`: the taskset's harness (its bundled one, else `null`, the plain chat loop
with the taskset's tools over MCP) runs in a local subprocess runtime against an
OpenAI-compatible endpoint, its program on the trainer's Python (v1_programs.py). A plain single-turn task (no tools, no runtime-dependent
signal, no setup/finalize) can also be scored offline: a reply generated elsewhere goes
on a `vf.Trace` built from `vf.TraceTask`, `vf.AgentInfo`, `vf.MessageNode` and
`vf.Message`, then `task.score(trace)`.

v1's eval client relays responses without their token ids, so episodes run through a
small recording proxy in front of the server: it keeps vLLM's `prompt_token_ids` and
`token_ids` (and logprobs) of each response, keyed by the `X-Session-ID` header that v1
sets to the trace's id.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import re
import sys
import typing
import uuid
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
    finite,
    to_openai,
)

#: an infinite taskset is cut to this many tasks
MAX_TASKS = 100_000
#: harnesses vft runs when the taskset bundles none (verifiers' default, `bash`, hands the
#: model a shell on the trainer's machine)
DEFAULT_HARNESS = "null"
_PROVIDER_ERRORS = ("ProviderError", "InterceptionError", "TunnelError")
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def _state_type(task_cls: type) -> type:
    """The task's declared `vf.State` subclass (`Task[Data, State, Config]`)."""
    import verifiers.v1 as vf

    for klass in task_cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            for arg in typing.get_args(base):
                if isinstance(arg, type) and issubclass(arg, vf.State):
                    return arg
    return vf.State


def _roles(config_type: Any) -> list[str]:
    import verifiers.v1 as vf

    return [
        name
        for name, f in config_type.model_fields.items()
        if isinstance(f.default, vf.AgentConfig)
    ]


def _where_from_traceback(text: str | None, roots: list[str], default: str | None) -> str | None:
    """The environment's frame in a recorded traceback: under `roots`, else outside the
    libraries (verifiers, vft, the standard library, site-packages), else `default`."""
    frames = _FRAME.findall(text or "")
    for f, line in reversed(frames):
        if any(os.path.abspath(f).startswith(r) for r in roots):
            return f"{f}:{line}"
    libraries = (f"{os.sep}verifiers{os.sep}", f"{os.sep}vft{os.sep}", "site-packages")
    for f, line in reversed(frames):
        if not any(x in f for x in libraries) and not f.startswith((sys.base_prefix, "<")):
            return f"{f}:{line}"
    return default


class _RecordedError(Exception):
    """An error verifiers recorded on an episode (type name and message as recorded)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class V1Adapter(Adapter):
    api = "v1"

    def __init__(self, env_id: str, module: ModuleType, args: dict[str, Any]) -> None:
        import verifiers.v1 as vf

        from vft.train.envs.v1_programs import run_programs_here

        super().__init__(env_id, module, args)
        run_programs_here()  # a harness program never downloads uv or its packages
        self.vf = vf
        # v1 imports a taskset by its id: make the id name this very module
        self.taskset_id = module.__name__.rsplit(".", 1)[-1]
        if sys.modules.get(self.taskset_id) is not module:
            sys.modules[self.taskset_id] = module
        try:
            bundled = vf.default_harness_id(self.taskset_id)
            self.harness_id = bundled if bundled != "bash" else DEFAULT_HARNESS
            config_type = vf.env_config_type(self.taskset_id)
            self._roles = _roles(config_type)
            seat = {"harness": {"id": self.harness_id}, "runtime": {"type": "subprocess"}}
            data: dict[str, Any] = {"taskset": {"id": self.taskset_id, **self.args}}
            data |= {role: seat for role in self._roles}
            self.config = vf.resolve_env_config(data)
            self.env = vf.load_environment(self.config)
        except Exception as exc:
            raise self.fail(exc) from exc
        self.taskset = self.env.taskset
        self.task_cls = type(self.taskset).task_type()
        self.harness_cls = type(
            vf.load_harness(vf.harness_config_type(self.harness_id)(id=self.harness_id))
        )
        self._rows: list[Row] | None = None
        self._weights, self._metrics = self._signal_layout()
        self._stack: contextlib.AsyncExitStack | None = None
        self._lock: asyncio.Lock | None = None
        self._recorder: _TokenRecorder | None = None
        self._proxy_url: str | None = None
        self._key_vars: dict[str, str] = {}

    # -- layout ------------------------------------------------------------------------

    def _probe_task(self) -> Any:
        with contextlib.suppress(Exception):
            return next(iter(self.taskset.head(1)))
        return None

    def _signal_layout(self) -> tuple[dict[str, float], list[str]]:
        task = self._probe_task()
        weights: dict[str, float] = {}
        metrics: list[str] = []
        if task is None:
            return weights, metrics
        for fn in task.hooks("reward"):
            weights[fn.__name__] = float(getattr(fn, "_vf_weight", 1.0))
        for judge in task.plugged_judges():
            weights[judge.reward_name] = float(judge.config.weight)
        metrics = [fn.__name__ for fn in task.hooks("metric") if fn.__name__ not in weights]
        return weights, metrics

    def _requires_runtime(self) -> list[str]:
        task = self._probe_task()
        if task is None:
            return []

        def needs(fn: Any) -> bool:
            p = inspect.signature(fn).parameters.get("runtime")
            return p is not None and p.default is inspect.Parameter.empty

        out = [fn.__name__ for fn in (*task.hooks("metric"), *task.hooks("reward")) if needs(fn)]
        out += [j.reward_name for j in task.plugged_judges() if needs(j.score)]
        return out

    @property
    def _toolsets(self) -> list[Any]:
        return [
            *self.task_cls.toolsets(self.taskset.config.task),
            *self.taskset.toolsets(self.taskset.config),
        ]

    @property
    def uses_tools(self) -> bool:
        return bool(self._toolsets)

    @property
    def multi_turn(self) -> bool:
        return type(self.env) is not self.vf.SingleAgentEnv or self.uses_tools

    @property
    def agents(self) -> list[str]:
        return list(self._roles)

    @property
    def offline_scorable(self) -> bool:
        vf = self.vf
        t = self.task_cls
        return (
            not self.multi_turn
            and not self._requires_runtime()
            and not t.NEEDS_CONTAINER
            and t.setup is vf.Task.setup
            and t.finalize is vf.Task.finalize
        )

    def accepted_args(self) -> list[str] | None:
        fields = type(self.taskset.config).model_fields
        return [n for n in fields if n != "id"]

    def extra_facts(self) -> dict[str, Any]:
        h = self.harness_cls
        return {
            "env_class": type(self.env).__name__,
            "harness": self.harness_id,
            "harness_executes_code": bool(getattr(h, "EXECUTES_CODE", True)),
            "needs_container": bool(
                getattr(h, "NEEDS_CONTAINER", False) or self.task_cls.NEEDS_CONTAINER
            ),
            "runtime_signals": self._requires_runtime(),
            "infinite": bool(self.taskset.INFINITE),
        }

    # -- rows --------------------------------------------------------------------------

    def _prompt(self, task: Any) -> list[dict[str, Any]]:
        d = task.data
        prompt: list[dict[str, Any]] = []
        if d.system_prompt:
            prompt.append({"role": "system", "content": d.system_prompt})
        if isinstance(d.prompt, str):
            prompt.append({"role": "user", "content": d.prompt})
        else:
            prompt += [to_openai(m) for m in d.prompt or []]
        return prompt

    def rows(self) -> list[Row]:
        if self._rows is None:
            view = self.taskset.head(MAX_TASKS) if self.taskset.INFINITE else self.taskset
            try:
                tasks = list(view)
            except Exception as exc:
                raise self.fail(exc) from exc
            self._rows = [Row("train", i, self._prompt(t), t) for i, t in enumerate(tasks)]
        return self._rows

    def eval_rows(self) -> list[Row] | None:
        return None  # a v1 taskset has no eval split

    # -- offline scoring ---------------------------------------------------------------

    async def score_group(self, row: Row, replies: list[str]) -> list[Result]:
        if not self.offline_scorable:
            raise RuntimeError(f"{self.env_id}: episodes run the environment's loop on a server")
        return [await self._score_one(row, reply) for reply in replies]

    async def _score_one(self, row: Row, reply: str) -> Result:
        from pydantic import TypeAdapter

        vf = self.vf
        task = row.data
        messages = [*row.prompt, {"role": "assistant", "content": reply}]
        adapter: TypeAdapter[Any] = TypeAdapter(vf.Message)
        nodes = [
            vf.MessageNode(
                parent=i - 1 if i else None,
                message=adapter.validate_python({k: v for k, v in m.items() if v is not None}),
                sampled=i == len(messages) - 1,
            )
            for i, m in enumerate(messages)
        ]
        trace = vf.Trace(
            task=vf.TraceTask(
                type=type(task).__name__, data=task.data, key=task.key, hash=task.hash
            ),
            agent=vf.AgentInfo(config=vf.AgentConfig()),
            nodes=nodes,
            state=_state_type(type(task))(),
        )
        try:
            await task.score(trace)
        except Exception as exc:
            raise self.fail(exc) from exc
        return self._from_trace(trace, want_tokens=False)

    # -- episodes ----------------------------------------------------------------------

    async def _ensure_serving(self) -> None:
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._stack is None:
                stack = contextlib.AsyncExitStack()
                try:
                    await stack.enter_async_context(self.env.serving())
                except Exception as exc:
                    raise self.fail(exc) from exc
                self._stack = stack

    async def _endpoint(self, server: Server) -> str:
        assert self._lock is not None
        async with self._lock:
            if self._recorder is None:
                self._recorder = _TokenRecorder(server.base_url)
                self._proxy_url = await self._recorder.start()
        assert self._proxy_url is not None
        return self._proxy_url

    def _ctx(self, server: Server, base_url: str, sampling: dict[str, Any]) -> Any:
        vf = self.vf
        var = self._key_vars.get(server.api_key)
        if var is None:
            var = self._key_vars[server.api_key] = f"VFT_V1_KEY_{uuid.uuid4().hex[:8].upper()}"
            os.environ[var] = server.api_key
        sa = {k: v for k, v in sampling.items() if k != "extra_body"}
        sa["logprobs"] = True
        sa["extra_body"] = {**(sampling.get("extra_body") or {}), "return_token_ids": True}
        return vf.ModelContext(
            model=server.model,
            client=vf.EvalClientConfig(base_url=base_url, api_key_var=var),
            sampling=vf.SamplingConfig(**sa),
        )

    def _raise_recorded(self, errors: list[Any]) -> None:
        if not errors:
            return
        e = errors[0]
        if e.type in _PROVIDER_ERRORS:
            raise InferenceServerError(f"{e.type}: {e.message}")
        roots = [os.path.dirname(self.source)] if self.source else []
        where = _where_from_traceback(e.traceback, roots, self.source)
        raise EnvironmentCodeError(self.env_id, _RecordedError(e.type, e.message), where)

    def _from_trace(self, tr: Any, want_tokens: bool) -> Result:
        msgs = [to_openai(m) for m in tr.messages]
        first = next((i for i, n in enumerate(tr.nodes) if n.sampled), len(msgs))
        turns = None
        if want_tokens and self._recorder is not None:
            turns = self._recorder.records.pop(tr.id, None)
        rewards = {k: finite(r.score) for k, r in tr.rewards.items() if r is not None}
        for name, r in tr.rewards.items():
            if r is not None and name in self._weights and r.weight != self._weights[name]:
                self._weights[name] = float(r.weight)
        return Result(
            reward=finite(tr.reward),
            rewards=rewards,
            metrics={k: finite(v) for k, v in tr.metrics.items()},
            turns=int(tr.num_turns),
            tool_calls=sum(len(m.tool_calls or []) for m in tr.assistant_messages),
            completion=msgs[first:],
            turn_tokens=turns,
            truncated=bool(tr.is_truncated),
        )

    async def _episode(self, row: Row, server: Server, sampling: dict[str, Any]) -> Result:
        base_url = await self._endpoint(server)
        ctx = self._ctx(server, base_url, sampling)
        try:
            episode = await self.env.run_episode(row.data, ctx)
        except Exception as exc:
            raise self.fail(exc) from exc
        self._raise_recorded(list(episode.errors))
        traces = [t for t in episode.traces if t.agent.trainable]
        for t in traces:
            self._raise_recorded(list(t.errors))
        if len(traces) != 1:
            raise EnvironmentCodeError(
                self.env_id,
                RuntimeError(
                    f"an episode produced {len(traces)} trainable traces; vft trains one seat"
                ),
                self.source,
            )
        return self._from_trace(traces[0], want_tokens=True)

    async def rollout_group(
        self, row: Row, n: int, server: Server, sampling: dict[str, Any]
    ) -> list[Result]:
        await self._ensure_serving()
        return list(await asyncio.gather(*(self._episode(row, server, sampling) for _ in range(n))))

    async def aclose(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None
        if self._recorder is not None:
            await self._recorder.close()
            self._recorder = None


class _TokenRecorder:
    """Reverse proxy that keeps vLLM's token ids and logprobs per `X-Session-ID`."""

    def __init__(self, upstream: str) -> None:
        from urllib.parse import urlsplit

        u = urlsplit(upstream)
        self.root = f"{u.scheme}://{u.netloc}"
        self.prefix = u.path.rstrip("/")
        self.records: dict[str, list[TurnTokens]] = {}

    async def start(self) -> str:
        import aiohttp
        from aiohttp import web

        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        app = web.Application(client_max_size=1 << 28)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{port}{self.prefix}"

    def _keep(self, sid: str | None, prompt: Any, ids: list[int], lps: list[float | None]) -> None:
        if sid and prompt is not None and ids:
            self.records.setdefault(sid, []).append(TurnTokens(list(prompt), list(ids), lps))

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.read()
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-length", "accept-encoding")
        }
        sid = request.headers.get("X-Session-ID")
        async with self._session.request(
            request.method, self.root + request.path_qs, data=body, headers=headers
        ) as up:
            ctype = up.headers.get("Content-Type", "application/json")
            if ctype.startswith("text/event-stream"):
                out = web.StreamResponse(status=up.status, headers={"Content-Type": ctype})
                await out.prepare(request)
                acc: dict[str, Any] = {"prompt": None, "ids": [], "lps": []}
                buf = b""
                async for chunk in up.content.iter_any():
                    await out.write(chunk)
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        self._sse_line(line.strip(), acc)
                await out.write_eof()
                if up.status == 200:
                    self._keep(sid, acc["prompt"], acc["ids"], acc["lps"])
                return out
            data = await up.read()
            status = up.status
        if status == 200 and ctype.startswith("application/json"):
            with contextlib.suppress(Exception):
                resp = json.loads(data)
                ch = resp["choices"][0]
                lps = [c.get("logprob") for c in ((ch.get("logprobs") or {}).get("content") or [])]
                self._keep(sid, resp.get("prompt_token_ids"), ch.get("token_ids") or [], lps)
        return web.Response(body=data, status=status, content_type=ctype.split(";")[0])

    @staticmethod
    def _sse_line(line: bytes, acc: dict[str, Any]) -> None:
        if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
            return
        with contextlib.suppress(Exception):
            ev = json.loads(line[5:])
            if ev.get("prompt_token_ids") is not None:
                acc["prompt"] = ev["prompt_token_ids"]
            for ch in ev.get("choices") or []:
                acc["ids"] += ch.get("token_ids") or []
                acc["lps"] += [
                    c.get("logprob") for c in ((ch.get("logprobs") or {}).get("content") or [])
                ]

    async def close(self) -> None:
        await self._runner.cleanup()
        await self._session.close()
