"""A user's accelerate config (`trainer.deepspeed = "my.yaml"`), checked before launch.

accelerate reads the file only when the trainer starts, on paid GPUs, and then fails
with a traceback deep inside DeepSpeed (`zero_stage: 7`) or YAML. The keys vft's plan
depends on are checked here, each wrong value one line naming the key and what is allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vft.core.errors import RecipeError
from vft.core.recipe.checks import MAX_RECIPE_BYTES, show

KEY = "trainer.deepspeed"

#: key path -> (what is allowed, in words; the test)
_RULES: dict[tuple[str, ...], tuple[str, Callable[[Any], bool]]] = {
    ("deepspeed_config", "zero_stage"): ("0, 1, 2 or 3", lambda v: _int(v) and 0 <= v <= 3),
    ("deepspeed_config", "offload_optimizer_device"): (
        "none, cpu or nvme",
        lambda v: v in ("none", "cpu", "nvme"),
    ),
    ("deepspeed_config", "offload_param_device"): (
        "none, cpu or nvme",
        lambda v: v in ("none", "cpu", "nvme"),
    ),
    ("mixed_precision",): (
        "'no', fp16, bf16 or fp8",
        lambda v: v in ("no", "fp16", "bf16", "fp8") or v is False,  # YAML reads no as false
    ),
    ("distributed_type",): (
        "an accelerate DistributedType such as DEEPSPEED or MULTI_GPU",
        lambda v: isinstance(v, str) and re.fullmatch(r"[A-Z][A-Z_]*", v) is not None,
    ),
    ("num_processes",): ("a whole number of at least 1", lambda v: _int(v) and v >= 1),
    ("num_machines",): ("a whole number of at least 1", lambda v: _int(v) and v >= 1),
    ("machine_rank",): ("a whole number of at least 0", lambda v: _int(v) and v >= 0),
    ("use_cpu",): ("true or false", lambda v: isinstance(v, bool)),
}


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_accelerate_config(path: Path, written: str) -> str:
    """The config's text, once it is known to parse and to hold allowed values."""
    try:
        if path.stat().st_size > MAX_RECIPE_BYTES:
            raise RecipeError(KEY, f"{show(written)} is larger than {MAX_RECIPE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(KEY, f"{show(written)}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise RecipeError(KEY, f"{show(written)} cannot be read ({exc.strerror})") from None
    check_accelerate_config(text, written, json_file=path.suffix == ".json")
    return text


def check_accelerate_config(text: str, written: str, *, json_file: bool = False) -> None:
    """Refuse a config that does not parse, is not a mapping, or holds a value outside
    what accelerate and DeepSpeed take for the keys in `_RULES`."""
    data = _parse(text, written, json_file)
    if data is _UNPARSED:
        return
    if not isinstance(data, dict):
        raise RecipeError(
            KEY, f"{show(written)} is not an accelerate config: its top level must be key: value"
        )
    deepspeed = data.get("deepspeed_config")
    if deepspeed is not None and not isinstance(deepspeed, dict):
        raise RecipeError(
            KEY, f"{show(written)}: deepspeed_config is {show(deepspeed)}; it must be a mapping"
        )
    for path, (allowed, ok) in _RULES.items():
        node: Any = data
        for part in path:
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is not _MISSING and not ok(node):
            raise RecipeError(
                KEY,
                f"{show(written)}: {'.'.join(path)} is {show(node)}; allowed: {allowed}",
            )


_MISSING = object()
_UNPARSED = object()


def _parse(text: str, written: str, json_file: bool) -> Any:
    """YAML (or JSON) to data; without PyYAML (a plan-only install), only the ZeRO stage
    is looked at, as text."""
    if json_file:
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise RecipeError(KEY, f"{show(written)}: not valid JSON ({exc})") from None
    try:
        import yaml
    except ImportError:
        _check_stage_text(text, written)
        return _UNPARSED
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise RecipeError(KEY, f"{show(written)}: not valid YAML ({reason})") from None


def _check_stage_text(text: str, written: str) -> None:
    m = re.search(r"^\s*zero_stage:\s*(\S+)", text, re.MULTILINE)
    if m and m.group(1) not in ("0", "1", "2", "3"):
        raise RecipeError(
            KEY, f"{show(written)}: deepspeed_config.zero_stage is {m.group(1)}; allowed: 0-3"
        )
