"""Guards on what a recipe may hold, beyond types: hostile input meets one line, never a crash.

A recipe comes from a file or `--set`, so anything can be in it: nesting thousands deep
(recursion in every library that walks it), paths no file system accepts (a NUL byte,
a 5000-character name), an environment id that would import `os`, TOML dates that no
JSON carries. Each check here names the key, shows the value (shortened) and says what
is allowed.
"""

from __future__ import annotations

import datetime
import json
import keyword
import re
import reprlib
import sys
from collections.abc import Sequence
from typing import Any

from vft.core.errors import RecipeError

#: deepest nesting of tables and arrays a recipe may hold (far above any real recipe,
#: far below the recursion limits of tomllib and json)
MAX_DEPTH = 32
#: the largest recipe file read
MAX_RECIPE_BYTES = 1 << 20
#: environment.args travel as one JSON argument to the environment's loader
MAX_ARGS_JSON = 64 * 1024
#: a path the recipe names: the usual Linux limits (PATH_MAX, NAME_MAX)
MAX_PATH_CHARS = 4096
MAX_NAME_BYTES = 255

ENV_ID_PATTERN = re.compile(
    r"(?:(?P<owner>[A-Za-z0-9][A-Za-z0-9_-]{0,63})/)?"
    r"(?P<name>[A-Za-z][A-Za-z0-9_-]{0,99})"
    r"(?:@(?P<version>[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}))?",
    re.ASCII,
)
#: our own packages: importable, never environments
NOT_ENVIRONMENTS = frozenset({"vft", "verifiers"})


def show(value: Any, limit: int = 60) -> str:
    """A value as the user wrote it (TOML spelling for booleans), shortened, on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value.bit_length() > 128:
        digits = int(abs(value).bit_length() * 0.30103) + 1  # repr() refuses > 4300 digits
        return f"a number of about {digits} digits"
    text = _SHORT.repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_SHORT.maxother = 60
_SHORT.maxlevel = 3


def key_text(parts: Sequence[Any]) -> str:
    """`trainer.args[0]`; odd keys (a newline, a dot, 300 characters) quoted and shortened."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = str(part)
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", text, re.ASCII):
            text = show(text, 40)
        out += f".{text}" if out else text
    return out


def too_deep(data: Any, limit: int = MAX_DEPTH) -> list[Any] | None:
    """The key path of the first value nested deeper than `limit`, or None; iterative,
    so that the check itself cannot overflow the stack."""
    stack: list[tuple[Any, list[Any]]] = [(data, [])]
    while stack:
        node, path = stack.pop()
        if len(path) > limit:
            return path[: limit + 1]
        if isinstance(node, dict):
            stack += [(v, [*path, k]) for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(v, [*path, i]) for i, v in enumerate(node)]
    return None


def check_depth(data: Any, where: str = "") -> None:
    path = too_deep(data)
    if path is not None:
        key = key_text(path[:4]) + ("..." if len(path) > 4 else "")
        raise RecipeError(
            key or where,
            f"nested more than {MAX_DEPTH} tables or arrays deep; a recipe value may nest at "
            f"most {MAX_DEPTH} levels",
        )


def path_text(value: str) -> str:
    """A path the recipe names must be one the file system can take, so that checking it
    (exists? a file?) answers instead of raising."""
    if "\x00" in value:
        raise ValueError("a path cannot contain a NUL character (\\u0000)")
    if len(value) > MAX_PATH_CHARS:
        raise ValueError(
            f"a path is at most {MAX_PATH_CHARS} characters; this one has {len(value)}"
        )
    longest = max((len(p.encode("utf-8", "surrogatepass")) for p in value.split("/")), default=0)
    if longest > MAX_NAME_BYTES:
        raise ValueError(
            f"each part of a path is at most {MAX_NAME_BYTES} bytes; one has {longest}"
        )
    return value


def environment_id(value: str) -> str:
    """A Verifiers environment id: a module name ('-' for '_', as `reverse-text` is
    `reverse_text`), optionally `owner/` before and `@version` after (a hub id); never a
    standard-library module, a keyword, or vft itself, which would import as something
    else entirely."""
    m = ENV_ID_PATTERN.fullmatch(value)
    if m is None:
        raise ValueError(
            "use an environment's module name: ASCII letters, digits, '_' or '-', starting "
            "with a letter, at most 100 characters (e.g. 'gsm8k', 'reverse-text'), "
            "optionally 'owner/' before it and '@version' after it"
        )
    module = m["name"].replace("-", "_")
    it = "it" if module == value else f"its module {module!r}"
    if module in sys.stdlib_module_names:
        raise ValueError(
            f"{it} is a Python standard-library module, not an environment; "
            "name your environment's package (e.g. 'gsm8k', 'my-env')"
        )
    if keyword.iskeyword(module) or module in NOT_ENVIRONMENTS:
        raise ValueError(f"{it} would import Python's or vft's own code, not an environment")
    return value


def environment_args(value: dict[str, Any]) -> dict[str, Any]:
    """environment.args reach `load_environment()` as JSON: TOML dates and times have no
    JSON form, and a huge table does not fit one command-line argument."""
    stack: list[tuple[Any, list[Any]]] = [(value, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, (datetime.date, datetime.time)):
            raise RecipeError(
                key_text(["environment", "args", *path]),
                f"{show(str(node))} is not allowed: a TOML date or time cannot be passed to "
                "load_environment(); write it as a string (in quotes)",
            )
        if isinstance(node, dict):
            stack += [(v, [*path, k]) for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(v, [*path, i]) for i, v in enumerate(node)]
    size = len(json.dumps(value))
    if size > MAX_ARGS_JSON:
        raise RecipeError(
            "environment.args",
            f"{size} bytes as JSON is too large (at most {MAX_ARGS_JSON}); put large data in "
            "a file and pass its path",
        )
    return value
