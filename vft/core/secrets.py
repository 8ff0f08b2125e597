"""Secret values never leave vft in clear: anything it prints or writes goes through here.

A secret is the value of an environment variable named like a credential (`HF_TOKEN`,
`WANDB_API_KEY`, `*_KEY`, `*_TOKEN`, `*_SECRET`, `*PASSWORD`, or a name listed in
`[backend.modal] secrets`), or any string shaped like a key (a Hugging Face token, a W&B
key, an OpenAI-style `sk-` key, a Modal `ak-`/`as-` token, a long random `*_key=...`).
`redact(text)` hides every such value found in this process's environment, every
key-shaped string, and `NAME=value` pairs with a secret NAME. `refuse_secrets` keeps
secrets out of recipes altogether: a recipe is shown, written and shipped.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from vft.core.errors import RecipeError

SECRET_NAMES = frozenset(
    {"WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "MODAL_TOKEN_SECRET", "MODAL_TOKEN_ID"}
)
SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "PASSWORD")
# a recipe key named like this holds a credential whatever its value (`eos_token` or
# `answer_key` do not: those count only with a key-shaped or random-looking value)
STRONG_NAME_PARTS = (
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "PRIVATE_KEY",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "AUTH_TOKEN",
    "ACCESS_TOKEN",
    "API_TOKEN",
    "CREDENTIAL",
)
MASK = "***"
# shorter values would mask ordinary words or digits all over the logs
MIN_SECRET_LEN = 6
# a recipe value counts when it *contains* a secret at least this long (else only equal)
MIN_CONTAINED_LEN = 12
# `HF_TOKEN=hf_abc`, `WANDB_API_KEY: abc` (env-style names only: lower case is too common)
_PAIR = re.compile(r"\b([A-Z0-9_]*(?:_KEY|_TOKEN|_SECRET|PASSWORD))(=|: ?)(\"?)([^\s\"',]+)")
# `api_key=...`, `"x-api-key": "..."` in any case: masked only when the value looks random
_LOOSE_PAIR = re.compile(
    r"(?i)\b([a-z0-9_.-]*(?:key|token|secret|password))([\"']?)(=|:\s?)([\"']?)([^\s\"',;]{16,})"
)
# strings shaped like keys, wherever they appear; the group name says which kind
_SHAPES = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"(?P<hf>hf_[A-Za-z0-9]{30,})"
    r"|(?P<openai>sk-(?=[A-Za-z_-]*[0-9])(?:proj-)?[A-Za-z0-9_-]{20,})"
    r"|(?P<modal>a[ks]-(?=[A-Za-z]*[0-9])[A-Za-z0-9]{16,})"
    r")"
    r"|(?<![0-9A-Za-z])(?P<wandb>[0-9a-f]{40})(?![0-9A-Za-z])"
)
KINDS = {
    "hf": "a Hugging Face token",
    "openai": "an OpenAI-style API key",
    "modal": "a Modal token",
    "wandb": "a W&B API key",
}
# the relay's cheap pre-checks: the patterns run only on the lines that have one of these
# (a pattern that starts with a literal is a fast substring scan: twice bytes.find's speed)
_HINT_PREFIXES = tuple(re.compile(p) for p in (rb"hf_", rb"k-", rb"as-"))  # k-: sk-, ak-
_HINT_NAMES = tuple(
    re.compile(rb"%s[\"']?[=:]" % word) for word in (b"key", b"token", b"secret", b"password")
)
_HEX_CLASS = bytes(1 if chr(i) in "0123456789abcdef" else 0 for i in range(256))
_HEX_RUN = b"\x01" * 40


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return upper in SECRET_NAMES or upper.endswith(SECRET_SUFFIXES)


def env_name(secret_name: str) -> str:
    """The environment variable a `[backend.modal] secrets` entry stands for (`my-creds` ->
    `MY_CREDS`): its value is as secret as the Modal secret it came from."""
    return re.sub(r"[^A-Za-z0-9_]", "_", secret_name).upper()


def secret_values(env: Mapping[str, str] | None = None, names: Iterable[str] = ()) -> list[str]:
    """The values to hide from `env` (default: this process's environment), longest first.

    `names`: more variable names whose values are secret (the recipe's Modal secrets)."""
    env = os.environ if env is None else env
    extra = {env_name(n) for n in names}
    found = {
        v
        for k, v in env.items()
        if (is_secret_name(k) or k.upper() in extra) and len(v) >= MIN_SECRET_LEN
    }
    return sorted(found, key=len, reverse=True)


def recipe_secret_names(recipe: Mapping[str, Any]) -> list[str]:
    """The secret names a recipe (as JSON data) lists in `[backend.modal] secrets`."""
    backend = recipe.get("backend")
    table = backend.get("modal") if isinstance(backend, Mapping) else None
    return option_secret_names(table) if isinstance(table, Mapping) else []


def option_secret_names(options: Mapping[str, Any]) -> list[str]:
    """The secret names a backend's decided options list (`plan.backend_options`)."""
    names = options.get("secrets")
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def looks_random(value: str) -> bool:
    """A long value of letters and digits with a key's entropy (not a word, path or number)."""
    if len(value) < 16 or not any(c.isdigit() for c in value):
        return False
    if not any(c.isalpha() for c in value):
        return False
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 3.3


def key_kind(text: str) -> str | None:
    """What kind of key `text` holds, if any: 'a Hugging Face token', ... (never the key)."""
    match = _SHAPES.search(text)
    if match:
        return KINDS[match.lastgroup or "hf"]
    if _PAIR.search(text):
        return "a credential (NAME=value)"
    if any(looks_random(m[5]) for m in _LOOSE_PAIR.finditer(text)):
        return "a credential (name=value)"
    return None


def _mask_loose(m: re.Match[str]) -> str:
    if not looks_random(m[5]):
        return m[0]
    return f"{m[1]}{m[2]}{m[3]}{m[4]}{MASK}"


def mask_shapes(text: str) -> str:
    """`text` with key-shaped strings and secret `NAME=value` pairs hidden."""
    text = _SHAPES.sub(MASK, text)
    text = _PAIR.sub(lambda m: f"{m[1]}{m[2]}{m[3]}{MASK}", text)
    return _LOOSE_PAIR.sub(_mask_loose, text)


def _hint_lines(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of the lines of `data` that may hold a key shape, in order: a few
    substring scans find them, so the patterns never run over every byte the relay sees."""
    found: set[int] = set()

    def lines_of(haystack: bytes, needle: re.Pattern[bytes] | bytes) -> None:
        pos = 0
        while True:
            if isinstance(needle, bytes):
                at = haystack.find(needle, pos)
            else:
                match = needle.search(haystack, pos)
                at = -1 if match is None else match.start()
            if at < 0:
                return
            found.add(data.rfind(b"\n", 0, at) + 1)
            end = data.find(b"\n", at)
            if end < 0:
                return
            pos = end + 1  # one hit per line is enough

    for prefix in _HINT_PREFIXES:
        lines_of(data, prefix)
    lines_of(data.translate(_HEX_CLASS), _HEX_RUN)
    lowered = data.lower()
    for name in _HINT_NAMES:
        lines_of(lowered, name)
    spans = []
    for start in sorted(found):
        end = data.find(b"\n", start)
        spans.append((start, len(data) if end < 0 else end))
    return spans


def _mask_bytes(data: bytes) -> bytes:
    """`data` with key shapes masked in the lines that may hold one."""
    spans = _hint_lines(data)
    if not spans:
        return data
    out, pos = [], 0
    for start, end in spans:
        # surrogateescape: bytes that are not UTF-8 come back exactly as they were
        line = data[start:end].decode("utf-8", "surrogateescape")
        out += [data[pos:start], mask_shapes(line).encode("utf-8", "surrogateescape")]
        pos = end
    out.append(data[pos:])
    return b"".join(out)


class Redactor:
    """Hides a fixed set of secret values and every key shape; cheap enough for the log
    relay's hot path."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = sorted({v for v in values if len(v) >= MIN_SECRET_LEN}, key=len, reverse=True)
        self._bytes = [v.encode() for v in self.values]

    @classmethod
    def for_env(cls, *envs: Mapping[str, str], names: Iterable[str] = ()) -> Redactor:
        """The secrets of `envs`; `names`: more secret variable names (Modal secrets)."""
        names = tuple(names)
        return cls(v for env in envs for v in secret_values(env, names))

    def text(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, MASK)
        return mask_shapes(text)

    def bytes(self, data: bytes) -> bytes:
        for value in self._bytes:
            if value in data:
                data = data.replace(value, MASK.encode())
        return _mask_bytes(data)

    def obj(self, value: Any) -> Any:
        """A copy of a JSON-like value with secret strings and secret-named keys hidden."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                self.text(k) if isinstance(k, str) else k: (
                    MASK if is_secret_name(str(k)) and v else self.obj(v)
                )
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.obj(v) for v in value]
        return value


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` with every secret of `env` (default: os.environ), every key-shaped string and
    every `NAME=secret` hidden."""
    return Redactor(secret_values(env)).text(text)


def refuse_secrets(recipe: Mapping[str, Any], env: Mapping[str, str] | None = None) -> None:
    """Raise a one-line RecipeError when a recipe (as JSON data) holds a secret value.

    A recipe is shown (`vft plan`), written (plan.json) and sent (Modal); a secret has no
    place in it and goes through the environment instead. The error names the key and
    the kind of secret, never the value."""
    env = os.environ if env is None else env
    known = _known_secrets(env, recipe_secret_names(recipe))
    masker = Redactor(known.values())
    for path, name, value in _leaves(recipe):
        kind = _secret_kind(name, value, known)
        if kind is not None:
            raise RecipeError(
                masker.text(path),
                f"looks like a secret ({kind}), and a recipe is shown, written to plan.json "
                "and sent to the run's machines",
                hint="pass it through the environment instead: export it, or put it in a Modal "
                "secret listed in [backend.modal] secrets; vft passes secret environment "
                "variables to the run",
            )


def _known_secrets(env: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """{variable name: value} of the environment's secrets."""
    extra = {env_name(n) for n in names}
    return {
        k: v
        for k, v in env.items()
        if (is_secret_name(k) or k.upper() in extra) and len(v) >= MIN_SECRET_LEN
    }


def _leaves(data: Any, path: str = "", name: str = "") -> Iterator[tuple[str, str, Any]]:
    """(key path, the key's own name, value) of every scalar, and of every mapping key."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            child = f"{path}.{key}" if path else str(key)
            yield child, "", str(key)  # a key can be a secret too
            yield from _leaves(value, child, str(key))
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            yield from _leaves(value, f"{path}[{i}]", name)
    elif data is not None and not isinstance(data, bool):
        yield path, name, data


def _secret_kind(name: str, value: Any, known: Mapping[str, str]) -> str | None:
    """Why `value` (under key `name`) is a secret, or None."""
    text = str(value)
    for var, secret in known.items():
        if text == secret or (len(secret) >= MIN_CONTAINED_LEN and secret in text):
            return f"the value of ${var}"
    kind = key_kind(text)
    if kind is not None:
        return kind
    if name and is_secret_name(name) and text:
        if any(part in name.upper() for part in STRONG_NAME_PARTS) or name.upper() in SECRET_NAMES:
            return f"a value under the secret-named key {name!r}"
        if looks_random(text):
            return f"a random-looking value under {name!r}"
    return None
