"""Secret values never leave vft in clear: anything it prints or writes goes through here.

A secret is the value of an environment variable named like a credential (`HF_TOKEN`,
`WANDB_API_KEY`, `*_KEY`, `*_TOKEN`, `*_SECRET`, `*PASSWORD`). `redact(text)` hides every
such value found in this process's environment, plus `NAME=value` pairs with a secret NAME.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

SECRET_NAMES = frozenset(
    {"WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "MODAL_TOKEN_SECRET", "MODAL_TOKEN_ID"}
)
SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "PASSWORD")
MASK = "***"
# shorter values would mask ordinary words or digits all over the logs
MIN_SECRET_LEN = 6
# `HF_TOKEN=hf_abc`, `WANDB_API_KEY: abc` (env-style names only: lower case is too common)
_PAIR = re.compile(r"\b([A-Z0-9_]*(?:_KEY|_TOKEN|_SECRET|PASSWORD))(=|: ?)(\"?)([^\s\"',]+)")


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return upper in SECRET_NAMES or upper.endswith(SECRET_SUFFIXES)


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """The values to hide from `env` (default: this process's environment), longest first."""
    env = os.environ if env is None else env
    found = {v for k, v in env.items() if is_secret_name(k) and len(v) >= MIN_SECRET_LEN}
    return sorted(found, key=len, reverse=True)


class Redactor:
    """Hides a fixed set of secret values; cheap enough for the log relay's hot path."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = sorted({v for v in values if len(v) >= MIN_SECRET_LEN}, key=len, reverse=True)
        self._bytes = [v.encode() for v in self.values]

    @classmethod
    def for_env(cls, *envs: Mapping[str, str]) -> Redactor:
        return cls(v for env in envs for v in secret_values(env))

    def text(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, MASK)
        return _PAIR.sub(lambda m: f"{m[1]}{m[2]}{m[3]}{MASK}", text)

    def bytes(self, data: bytes) -> bytes:
        # values only: a regex over every byte a child prints would slow the relay
        for value in self._bytes:
            if value in data:
                data = data.replace(value, MASK.encode())
        return data

    def obj(self, value: Any) -> Any:
        """A copy of a JSON-like value with secret strings and secret-named keys hidden."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                k: (MASK if is_secret_name(str(k)) and v else self.obj(v)) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.obj(v) for v in value]
        return value


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` with every secret of `env` (default: os.environ) and every `NAME=secret` hidden."""
    return Redactor(secret_values(env)).text(text)


def refuse_secrets(recipe: Mapping[str, Any]) -> None:
    """Raise a one-line RecipeError when a recipe (as JSON data) holds a secret value.

    A recipe is shown (`vft plan`), written (plan.json) and sent (Modal); a secret has no
    place in it and goes through the environment instead."""
