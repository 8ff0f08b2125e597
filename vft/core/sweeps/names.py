"""Run names for a sweep's points: `smoke-lr3e-06-beta0.04`.

A name says the point's values, so `vft runs` and a plot legend read without a lookup
table; it is a valid run name (NAME_PATTERN), unique within the sweep, and stable: the
same sweep names its points the same way every time, so a second sweep continues the
same run folders (attempt-2) instead of scattering new ones.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

from vft.core.recipe import NAME_PATTERN
from vft.core.sweeps.grid import Point, toml_value

MAX_NAME = 63
#: short labels for the keys swept most (by whole key, then by last part); any other
#: key is labelled by its last part
LABELS = {
    "model.name": "",  # the model says itself: gsm8k-Qwen3-1.7B-lr1e-06
    "learning_rate": "lr",
    "beta": "beta",
    "temperature": "temp",
    "num_generations": "gen",
    "per_device_train_batch_size": "bs",
    "gradient_accumulation_steps": "ga",
    "max_steps": "steps",
    "max_tokens": "tok",
    "max_prompt_length": "prompt",
    "lr_scheduler": "sched",
    "gpu_memory_utilization": "gmu",
    "seed": "seed",
}
_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def labels(keys: Sequence[str]) -> dict[str, str]:
    """A short label per key, unique among `keys` (the full key where two would clash)."""
    short = {k: LABELS.get(k, LABELS.get(k.rsplit(".", 1)[-1], k.rsplit(".", 1)[-1])) for k in keys}
    clashing = {s for s in short.values() if list(short.values()).count(s) > 1}
    return {k: (k.replace(".", "_") if s in clashing else s) for k, s in short.items()}


def column_headers(keys: list[str]) -> dict[str, str]:
    """A column header per grid key: its last part (`learning_rate`), or the whole key
    where two keys end alike."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (tail if last.count(tail) == 1 else k) for k, tail in zip(keys, last, strict=True)}


def value_text(value: object) -> str:
    """A value as it reads in a name: `3e-06`, `0.04`, `true`, `zero2`; a hub id or a
    path by its last part (`Qwen3-1.7B`)."""
    text = (
        value.rstrip("/").rsplit("/", 1)[-1] or value
        if isinstance(value, str)
        else toml_value(value)
    )
    return _BAD.sub("-", text.replace("+", "")).strip("-") or "x"


def point_names(prefix: str, points: Sequence[Point]) -> list[str]:
    """`prefix-<label><value>-...` per point; too long or clashing: shortened, and a
    digest of the point's values keeps it unique (the same digest every time)."""
    if not points:
        return []
    tags = labels([key for key, _ in points[0].values])
    names = []
    for point in points:
        parts = [prefix, *(f"{tags[key]}{value_text(value)}" for key, value in point.values)]
        names.append("-".join(parts))
    clashes = {n for n in names if names.count(n) > 1}
    out = []
    for point, name in zip(points, names, strict=True):
        if name in clashes or len(name) > MAX_NAME:
            digest = _digest(point)
            name = f"{name[: MAX_NAME - len(digest) - 1].rstrip('-._')}-{digest}"
        assert re.match(NAME_PATTERN, name), name
        out.append(name)
    return out


def _digest(point: Point) -> str:
    blob = json.dumps([[k, toml_value(v)] for k, v in point.values])
    return hashlib.sha256(blob.encode()).hexdigest()[:8]
