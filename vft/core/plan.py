"""The Plan: the frozen, versioned, JSON contract between the core and every backend.

A backend receives a Plan, never a Recipe. Strings in a process's argv and env may hold
run-time placeholders that only the machine running the node can know; the supervisor
fills them in with `Process.resolved(context)`:

- `{{run_dir}}`       the attempt folder of this run on this machine;
- `{{node_addr:N}}`   the address other nodes reach node N at (127.0.0.1 on one node);
- `{{node_host:N}}`   the same address as a URL host (IPv6 in brackets);
- `{{node_rank}}`     this node's rank.

Device ids in a plan are indices into the GPUs a node was given. Where a scheduler or the
user already narrowed them (Slurm sets CUDA_VISIBLE_DEVICES per job step), the node's
`NodeContext.devices` lists the physical ids and `resolved` maps the plan's ids onto them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

PLAN_VERSION = 1
PLACEHOLDER = re.compile(r"\{\{(run_dir|node_rank|node_(addr|host):(\d+))\}\}")


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

    role: str  # "inference" | "trainer"
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
class Plan:
    """Everything a backend needs to run a recipe; see DESIGN.md "Plan JSON"."""

    name: str
    backend: str
    gpu_type: str | None
    gpus_per_node: int
    nodes: int
    inference: Mapping[str, Any]
    trainer: Mapping[str, Any]
    processes: tuple[Process, ...]
    files: Mapping[str, str]
    memory: Mapping[str, Any]
    cost: Mapping[str, Any]
    warnings: tuple[str, ...] = ()
    install: tuple[str, ...] = ()
    run: Mapping[str, Any] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    recipe: Mapping[str, Any] = field(default_factory=dict)
    version: int = PLAN_VERSION

    @property
    def is_cpu(self) -> bool:
        return self.gpu_type is None

    def processes_on(self, node: int) -> tuple[Process, ...]:
        return tuple(p for p in self.processes if p.node == node)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["processes"] = [
            {**asdict(p), "devices": list(p.devices), "argv": list(p.argv), "env": dict(p.env)}
            for p in self.processes
        ]
        data["warnings"] = list(self.warnings)
        data["install"] = list(self.install)
        return {"version": self.version, **{k: v for k, v in data.items() if k != "version"}}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        version = data.get("version")
        if version != PLAN_VERSION:
            raise ValueError(
                f"plan version {version!r} is not supported (this vft reads {PLAN_VERSION})"
            )
        fields = dict(data)
        fields["processes"] = tuple(
            Process(
                role=p["role"],
                name=p.get("name", p["role"]),
                node=int(p["node"]),
                devices=tuple(p["devices"]),
                argv=tuple(p["argv"]),
                env=dict(p["env"]),
                ready_url=p.get("ready_url"),
            )
            for p in data["processes"]
        )
        fields["warnings"] = tuple(data.get("warnings", ()))
        fields["install"] = tuple(data.get("install", ()))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in fields.items() if k in known})

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(json.loads(text))
