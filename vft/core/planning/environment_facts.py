"""What a loaded environment needs, and what a plan refuses because of it.

`describe_environment` runs `python -m vft.train.envs.describe` in a subprocess, so the
process that plans never imports verifiers; `environment_problems` turns the facts and
the plan's shape into the one-line refusals the planner raises.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vft.core.errors import PlanError

# ---------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class RewardSpec:
    name: str
    weight: float


@dataclass(frozen=True)
class EnvironmentFacts:
    """What `python -m vft.train.envs.describe` says about a loaded environment."""

    id: str
    api: str  # "legacy" | "v1"
    multi_turn: bool
    uses_tools: bool
    agents: tuple[str, ...] = ("agent",)
    eval_split: bool = False
    eval_size: int = 0
    train_size: int = 0
    needs_server: bool = False  # episodes must run the environment's loop on a server
    rewards: tuple[RewardSpec, ...] = ()
    metrics: tuple[str, ...] = ()
    accepted_args: tuple[str, ...] | None = None
    source: str | None = None
    harness: str | None = None  # v1: the harness program episodes run through
    harness_executes_code: bool = False
    needs_container: bool = False
    remote_sandbox: bool = False  # classic: a SandboxEnv needs Prime sandboxes
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EnvironmentFacts:
        ev = d.get("eval_split") or {}
        if isinstance(ev, bool):
            ev = {"present": ev, "size": d.get("eval_size", 0)}
        known = {f for f in cls.__dataclass_fields__ if f != "extra"} | {"eval_split"}
        args = d.get("accepted_args")
        return cls(
            id=str(d.get("id", "")),
            api=str(d.get("api", "")),
            multi_turn=bool(d.get("multi_turn")),
            uses_tools=bool(d.get("uses_tools")),
            agents=tuple(d.get("agents") or ("agent",)),
            eval_split=bool(ev.get("present")),
            eval_size=int(ev.get("size") or 0),
            train_size=int(d.get("train_size") or 0),
            needs_server=bool(d.get("needs_server", d.get("multi_turn") or d.get("uses_tools"))),
            rewards=tuple(
                RewardSpec(str(r["name"]), float(r["weight"])) for r in d.get("rewards") or ()
            ),
            metrics=tuple(d.get("metrics") or ()),
            accepted_args=None if args is None else tuple(args),
            source=d.get("source"),
            harness=d.get("harness"),
            harness_executes_code=bool(d.get("harness_executes_code")),
            needs_container=bool(d.get("needs_container")),
            remote_sandbox=bool(d.get("remote_sandbox")),
            extra={k: v for k, v in d.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["eval_split"] = {"present": d.pop("eval_split"), "size": d.pop("eval_size")}
        d["rewards"] = [asdict(r) for r in self.rewards]
        d.update(d.pop("extra"))
        return d


def environment_problems(
    facts: EnvironmentFacts,
    *,
    served: bool,
    cpu: bool,
    evaluates: bool = False,
    args: Mapping[str, Any] | None = None,
    server_args: Sequence[str] | None = None,
) -> list[str]:
    """The one-line refusals for training `facts`' environment on this plan.

    `served`: the plan has an inference server the trainer's rollouts can call (a GPU
    plan without colocation, or a CPU plan with `inference.colocate = false`); `cpu`: a
    CPU plan; `evaluates`: `trainer.eval_steps` is set; `args`: `environment.args`;
    `server_args`: the server's extra arguments (`inference.extra_args`), when known.
    """
    p: list[str] = []
    name = facts.id
    where = (
        "set inference.colocate = false on a CPU plan"
        if cpu
        else "plan >= 2 GPUs without inference.colocate = true"
    )
    if facts.needs_server and not served:
        if facts.multi_turn:
            why = "is multi-turn: its turns run on an inference server"
        elif facts.uses_tools:
            why = "uses tools: its tool loop runs on an inference server"
        else:
            why = (
                "runs its own episode loop (setup, runtime or a custom loop) on an inference server"
            )
        kind = "inside the trainer" if cpu else "in a vLLM engine inside the trainer (colocated)"
        p.append(f"environment.id: {name!r} {why}; this plan generates {kind} ({where})")
    if (
        served
        and facts.uses_tools
        and server_args is not None
        and "--enable-auto-tool-choice" not in server_args
    ):
        p.append(
            f"environment.id: {name!r} uses tools: the server must parse the model's tool "
            'calls (add "--enable-auto-tool-choice", "--tool-call-parser", "<your model\'s '
            'parser, e.g. hermes>" to inference.extra_args)'
        )
    if len(facts.agents) > 1:
        p.append(
            f"environment.id: {name!r} has {len(facts.agents)} agent seats "
            f"({', '.join(facts.agents)}); vft trains single-agent environments only"
        )
    if facts.needs_container:
        p.append(
            f"environment.id: {name!r} needs a container runtime (harness "
            f"{facts.harness!r}); vft runs v1 harnesses as local subprocesses only"
        )
    elif facts.api == "v1" and facts.needs_server and facts.harness_executes_code:
        p.append(
            f"environment.id: {name!r} runs harness {facts.harness!r}, which executes the "
            "model's code; vft would run it unsandboxed on the trainer's machine"
        )
    if facts.remote_sandbox:
        p.append(
            f"environment.id: {name!r} runs its tools in Prime sandboxes (a SandboxEnv), "
            "a remote service vft does not provision"
        )
    if not facts.rewards:
        p.append(f"environment.id: {name!r} declares no reward function (weight != 0)")
    if facts.train_size == 0:
        p.append(f"environment.id: {name!r} has no training examples")
    if evaluates and not facts.eval_split:
        p.append(
            f"trainer.eval_steps: environment {name!r} has no eval split "
            f"({'a v1 taskset has none' if facts.api == 'v1' else 'load_environment() sets no eval_dataset'}); "
            "unset trainer.eval_steps"
        )
    if args and facts.accepted_args is not None:
        line = unaccepted_args(name, args, facts.accepted_args)
        if line:
            p.append(line)
    return p


def unaccepted_args(env_id: str, args: Mapping[str, Any], accepted: Sequence[str]) -> str | None:
    """The one line for `environment.args` keys the environment does not take, or None.

    Shared by the planner (from cached facts) and the describe subprocess (checked against
    `load_environment`'s signature before calling it), so both say it the same way."""
    unknown = sorted(set(args) - set(accepted))
    if not unknown:
        return None
    return (
        f"environment.args: {env_id!r} does not accept {', '.join(map(repr, unknown))} "
        f"(accepted: {', '.join(accepted) or 'none'})"
    )


DESCRIBE_TIMEOUT_S = 300.0
HUB_PROBE_S = 2.0


def hub_reachable(env: Mapping[str, str], timeout: float = HUB_PROBE_S) -> bool:
    """Whether the Hugging Face Hub's host name resolves (within `timeout` s).

    On a machine without a network, loading an environment whose data is on the Hub
    waits out the client's retries; a failed name lookup says the same in milliseconds,
    and the environment is then loaded in the Hub's offline mode (its local cache only).
    """
    if env.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    host = urllib.parse.urlsplit(env.get("HF_ENDPOINT") or "https://huggingface.co").hostname
    if not host:
        return True
    answer: list[bool] = []

    def lookup() -> None:
        import socket

        try:
            socket.getaddrinfo(host, 443)
            answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])


def describe_environment(
    env_id: str,
    args: Mapping[str, Any] | None = None,
    *,
    install: Sequence[str] = (),
    python: str | None = None,
    timeout: float = DESCRIBE_TIMEOUT_S,
) -> EnvironmentFacts | None:
    """Run `python -m vft.train.envs.describe` in a subprocess (the caller never imports
    verifiers) and read its facts.

    `install`: the recipe's `environment.install` folders, put on the subprocess's path
    (and their `src/`) so an environment installed only at launch is described too.
    Returns None when the environment is not importable here (e.g. it is installed only
    in a remote image); raises PlanError with describe's one line when loading it fails
    (its code raised, bad `environment.args`) or takes longer than `timeout`.
    """
    extra = []
    for item in install:
        folder = Path(item).resolve()
        extra += [str(folder / "src"), str(folder)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*extra, env.get("PYTHONPATH", "")]).strip(os.pathsep)
    if not hub_reachable(env):  # else the Hub client retries for ~25 s before it gives up
        env |= {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    argv = [python or sys.executable, "-m", "vft.train.envs.describe", env_id]
    argv += ["--args", json.dumps(dict(args or {}))]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        raise PlanError(
            f"environment.id: loading {env_id!r} took longer than {timeout:g} s "
            "(vft plan loads it to check what it needs)"
        ) from None
    if done.returncode == 0:
        try:
            return EnvironmentFacts.from_dict(json.loads(done.stdout))
        except (ValueError, KeyError, TypeError) as exc:
            raise PlanError(f"environment.id: {env_id!r}: unreadable facts ({exc})") from None
    lines = [x for x in done.stderr.strip().splitlines() if x.strip()]
    last = lines[-1] if lines else f"exit code {done.returncode}"
    if done.returncode == 2 and "is not installed" in last:
        return None
    if done.returncode == 2 and last.startswith("environment.args: "):
        raise PlanError(last)  # describe checked the arguments before loading
    if "No module named 'verifiers'" in done.stderr:
        return None  # the trainer's stack is not installed here (e.g. a remote-only run)
    raise PlanError(f"environment.id: {last}")


def summary_line(env_id: str, source: str, facts: EnvironmentFacts | None) -> str:
    """`gsm8k: builtin; classic API, single-turn, rewards correct_answer x1 + boxed_format
    x0.2; metrics num_turns; eval split 6` — what `vft plan` shows of the environment."""
    if facts is None:
        return f"{env_id}: {source} (not loaded here)"
    api = "classic" if facts.api == "legacy" else facts.api
    kind = "multi-turn" if facts.multi_turn else "single-turn"
    if facts.uses_tools:
        kind += " with tools"
    rewards = " + ".join(f"{r.name} x{r.weight:g}" for r in facts.rewards) or "none"
    parts = [f"{api} API, {kind}", f"rewards {rewards}"]
    if facts.metrics:
        parts.append(f"metrics {', '.join(facts.metrics)}")
    parts.append(f"eval split {facts.eval_size}" if facts.eval_split else "no eval split")
    if facts.harness and facts.needs_server:
        parts.append(f"harness {facts.harness}")
    return f"{env_id}: {source}; {'; '.join(parts)}"
