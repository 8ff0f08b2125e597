"""What `vft plan` and `vft run` do, out of the CLI: recipe file -> Plan -> a backend.

`prepare` is the I/O around the pure planner (recipe file, plugins, templates, paths, the
ports the backend finds free): it plans exactly once. `launch` writes the attempt folder
and hands the plan to the backend.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vft.core.errors import PlanError, RecipeError
from vft.core.plan import Plan
from vft.core.planning.environment_facts import EnvironmentFacts, describe_environment
from vft.core.planning.environments import check_environment, environment_source
from vft.core.planning.planner import Target, plan, requested_ports
from vft.core.recipe import Recipe, load_recipe
from vft.core.resources import accelerate_templates
from vft.core.secrets import refuse_secrets

if TYPE_CHECKING:
    from vft.core.plugins.backend import Backend
    from vft.core.runs import Attempt


@dataclass(frozen=True)
class Prepared:
    recipe: Recipe
    plan: Plan
    backend: Backend  # the instance that will run the plan
    notes: tuple[str, ...] = ()  # said to the user before launch (ports moved, ...)


def prepare(
    recipe_path: str | Path,
    overrides: tuple[str, ...] = (),
    backend_name: str = "local",
    *,
    check_paths: bool = True,
    choose_ports: bool = False,
    ports: Mapping[str, int] | None = None,
    base_dir: Path | None = None,
) -> Prepared:
    """Load, check and plan a recipe for one backend; every failure is a one-line UserError.

    With `choose_ports` (a run, not a look), the backend moves ports already taken where
    the run will bind them, before the one planning; `ports` pins some ports outright.
    `base_dir`: where the recipe's relative paths start, when not its file's folder.
    """
    from vft.core.plugins.registry import registry

    recipe = load_recipe(recipe_path, overrides, base_dir=base_dir)
    refuse_secrets(recipe.model_dump(mode="json"))
    reg = registry()
    backend = reg.backend(backend_name)
    server = reg.server(recipe.inference.engine)
    options = _backend_options(recipe, reg, backend_name)
    remote = backend_name != "local"  # the run's machines install the environment themselves
    facts, env_note = None, None
    if check_paths:
        check_recipe_paths(recipe, remote=remote)
        facts, env_note = environment_facts(recipe)
    requested = replace(requested_ports(recipe), **(ports or {}))
    chosen = backend.choose_ports(requested) if choose_ports else requested
    target = Target(
        backend=backend_name,
        capabilities=backend.capabilities,
        server=server,
        templates=accelerate_templates(),
        accelerate_config=_user_accelerate_config(recipe),
        backend_options=options,
        ports=chosen,
        environment=facts,
        environment_source=environment_source(recipe, remote=remote),
        environment_note=env_note,
    )
    result = plan(recipe, target)
    wanted = requested.as_dict()
    notes = tuple(
        f"port {wanted[key]} ({key}) is taken; using {port}"
        for key, port in result.bound_ports(0).items()
        if port != wanted[key]
    )
    unknown = sorted(set(recipe.backend) - set(reg.backends))
    if unknown:
        note = (
            f"[backend.{', backend.'.join(unknown)}] ignored: no such backend is installed "
            f"(installed: {', '.join(sorted(reg.backends))})"
        )
        result = replace(result, warnings=(*result.warnings, note))
    return Prepared(recipe, result, backend, notes)


def _backend_options(recipe: Recipe, reg: Any, chosen: str) -> dict[str, Any]:
    """Validate every `[backend.X]` table whose backend is installed; return the chosen one's."""
    chosen_options: dict[str, Any] = {}
    for name, table in recipe.backend.items():
        if name not in reg.backends:
            continue  # options for a backend not installed here: warned about, not checked
        model = reg.backends[name].cls.options_model
        if model is None:
            if table:
                raise RecipeError(f"backend.{name}", f"backend {name!r} takes no options")
            continue
        validated = _validated_options(model, table, name)
        if name == chosen:
            chosen_options = validated
    if chosen not in recipe.backend and chosen in reg.backends:
        model = reg.backends[chosen].cls.options_model
        if model is not None:
            chosen_options = model().model_dump(mode="json")
    return chosen_options


def _validated_options(model: Any, table: dict[str, Any], name: str) -> dict[str, Any]:
    """A `[backend.<name>]` table through its options model, as JSON-ready data. vft's own
    models are tables (vft.core.recipe.tables); a plugin's may be a pydantic model, whose
    errors are made one line here (pydantic is imported only then)."""
    from vft.core.recipe.tables import FieldError, Table

    if isinstance(model, type) and issubclass(model, Table):
        try:
            return model.model_validate(table).model_dump(mode="json")
        except FieldError as exc:
            raise exc.under("backend", name) from None
    from pydantic import ValidationError

    try:
        validated: dict[str, Any] = model.model_validate(table).model_dump(mode="json")
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        key = ".".join(["backend", name, *map(str, err["loc"])])
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(model.model_fields)
            raise RecipeError(key, "unknown key", hint=f"allowed: {allowed}") from None
        raise RecipeError(key, err["msg"]) from None
    return validated


def _user_accelerate_config(recipe: Recipe) -> str | None:
    ds = recipe.trainer.deepspeed
    if ds in ("zero2", "zero3"):
        return None
    path = recipe.path(ds)
    if path.suffix not in (".yaml", ".yml", ".json"):
        raise RecipeError(
            "trainer.deepspeed",
            f"{ds!r} is not allowed: use zero2, zero3, or a path to an accelerate config (.yaml)",
        )
    if not path.is_file():
        raise RecipeError(
            "trainer.deepspeed", f"accelerate config {ds!r} does not exist ({_from(recipe)})"
        )
    from vft.core.recipe.accelerate import read_accelerate_config

    return read_accelerate_config(path, ds)  # parsed and checked: zero_stage 0-3, ...


def environment_facts(recipe: Recipe) -> tuple[EnvironmentFacts | None, str | None]:
    """What the recipe's environment needs (turns, tools, rewards, eval split), from
    `python -m vft.train.envs.describe` in a subprocess, so that `vft plan` never imports
    verifiers itself; cached per environment content, arguments and verifiers version
    (describing one takes seconds, a cached answer microseconds). None: not loadable here
    (installed only where the run goes: a laptop that plans a Modal run; cached too), with
    a note when it needs the network to load (a hub dataset on an offline machine): the
    run's machine loads it, unchecked here."""
    from vft.core.planning import facts_cache

    env = recipe.environment
    install = tuple(str(recipe.path(item)) for item in env.install)
    cached = facts_cache.cache_file(env.id, dict(env.args), install)
    hit = facts_cache.read(cached)
    if hit is not None:
        return hit.facts, hit.note
    facts, note = None, None
    try:
        facts = describe_environment(env.id, env.args, install=install)
    except PlanError as exc:
        if not any(sign in exc.message for sign in OFFLINE_SIGNS):
            raise
        why = exc.message.split(": ", 1)[-1].split(" (at ", 1)[0]
        note = (
            f"environment {env.id!r} could not be loaded here: "
            + (  # vft itself sets HF_HUB_OFFLINE when the Hub's host does not resolve
                f"it needs the network ({why})"
                if not any(sign in why for sign in ("Hub", "offline", "LocalEntryNotFound"))
                else "its data is on the Hugging Face Hub, which HF_HUB_OFFLINE (set here) "
                "keeps it from reaching"
                if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
                else "its data is on the Hugging Face Hub, which this machine cannot reach"
            )
            + "; what it needs (turns, tools, rewards) is checked when the run loads it"
        )
    facts_cache.keep(cached, facts, note)  # None: not installed here (the key says which)
    return facts, note


#: what a load failure says when it needed the network (a hub dataset, offline)
OFFLINE_SIGNS = ("Couldn't reach", "LocalEntryNotFoundError", "ConnectionError", "offline mode")


def check_recipe_paths(recipe: Recipe, *, remote: bool = False) -> None:
    """Paths the recipe names must exist now, not after the GPUs are paid for."""
    script = recipe.trainer.script
    if script and not recipe.path(script).is_file():
        raise PlanError(f"trainer.script: {script!r} does not exist ({_from(recipe)})")
    for item in recipe.environment.install:
        p = recipe.path(item)
        if not (p / "pyproject.toml").is_file() and not (p / "setup.py").is_file():
            raise PlanError(
                f"environment.install: {item!r} is not a Python package folder "
                f"(it needs a pyproject.toml; {_from(recipe)})"
            )
    resume = recipe.trainer.resume_from_checkpoint
    local_resume = resume and resume != "latest" and not remote  # remote: on the run's volume
    if local_resume and not (Path(str(resume)) / "trainer_state.json").is_file():
        raise PlanError(
            f"trainer.resume_from_checkpoint: {resume!r} is not a checkpoint folder "
            "(no trainer_state.json there); use 'latest' or an existing "
            f"checkpoints/checkpoint-N folder ({_from(recipe)})"
        )
    check_environment(recipe, remote=remote)


def _from(recipe: Recipe) -> str:
    """Where relative paths start, said in an error line."""
    return f"relative paths start from the recipe's folder, {recipe.base_dir}"


@dataclass(frozen=True)
class Launched:
    plan: Plan
    attempt: Attempt
    exit_code: int  # 0 at once when detached or a dry run


def launch(
    recipe_path: str | Path,
    overrides: tuple[str, ...] = (),
    backend_name: str = "local",
    *,
    detach: bool = False,
    dry_run: bool = False,
    force: bool = False,
    note: Callable[[str], None] = print,
    show: Callable[[Plan, Backend], None] | None = None,
    base_dir: Path | None = None,
) -> Launched:
    """`vft run`: plan once, preflight, a new attempt folder, then the backend runs it.

    `note` receives the lines for the user; `show` prints the plan of a dry run.
    """
    from vft.core.errors import PreflightError
    from vft.core.runs import RunStatus, run_folder

    prepared = prepare(recipe_path, overrides, backend_name, choose_ports=True, base_dir=base_dir)
    if prepared.recipe.sweep:
        points = math.prod(len(values) for values in prepared.recipe.sweep.values())
        raise RecipeError(
            "sweep",
            f"this recipe is a grid of {points} runs: run them with `vft sweep {recipe_path}`",
            hint="or run the recipe once, without its grid: add --set 'sweep={}'",
        )
    impl, the_plan = prepared.backend, prepared.plan
    if detach:
        impl.capabilities.require(backend_name, "detach", "--detach")
    for line in prepared.notes:
        note(line)
    would_stop: PreflightError | None = None  # a dry run starts nothing: it shows the refusal
    try:
        for line in impl.check(the_plan, force=force):
            note(line)
    except PreflightError as exc:
        if not dry_run:
            raise
        would_stop = exc
    attempt = run_folder(the_plan.run.output_dir, the_plan.name).new_attempt(the_plan, backend_name)
    note(f"run {the_plan.name} attempt-{attempt.number}: {attempt.path}")
    if dry_run:
        if show is not None:
            show(the_plan, impl)
        attempt.update(status=RunStatus.DRY_RUN)
        if would_stop is not None:
            note(f"a real run would stop here: {would_stop.line()}")
        note("dry run: nothing started")
        # a script that checks a recipe with --dry-run learns from the code that it would fail
        return Launched(the_plan, attempt, would_stop.exit_code if would_stop else 0)
    allowed = _relaunch_restarts(prepared)
    if not allowed:
        return Launched(the_plan, attempt, impl.launch(the_plan, attempt, detach=detach))
    from vft.backends.restarts import last_attempt

    code = impl.launch(the_plan, attempt, detach=detach, restarts=allowed)  # type: ignore[call-arg]
    last = last_attempt(attempt)
    return Launched(last.plan() if last != attempt else the_plan, last, code)


def _relaunch_restarts(prepared: Prepared) -> int:
    """`resources.restarts` (or the backend's default) for a backend that restarts a
    transient failure by launching a new attempt itself (`restarts_by_relaunch`, the
    local one: its `launch` takes `restarts=`); 0 for the others, which restart on their
    own side (Modal's retries) from the plan."""
    backend = prepared.backend
    if not backend.restarts_by_relaunch:
        return 0
    requested = prepared.recipe.resources.restarts
    return backend.default_restarts if requested is None else requested
