"""Typed TOML tables, declared once: the small validator behind the recipe and vft's own
backend options.

A field is its annotation (the type) and one `field(...)` (default, bounds, allowed text,
description, an extra check); from that single declaration come validation with one-line
errors, `model_dump`, the JSON Schema and the README's reference table. It exists so that
`vft plan` and `vft backends` need not import pydantic (about 100 ms of start-up).

The classes answer the few pydantic names the rest of vft and backend plugins use
(`model_validate`, `model_dump`, `model_fields` with `.annotation`, `.default`,
`.description`, `model_fields_set`, `model_json_schema`), so a built-in options model and a
plugin's pydantic one are used alike.

Strict by design: an int field takes no bool or float (`max_steps = true` is not 1), a bool
field only true or false, a float field an int or a finite float, a string field only a
string; unknown keys are refused (with the closest key); a table left out takes its defaults.
"""

from __future__ import annotations

import copy
import datetime
import difflib
import inspect
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from vft.core.errors import RecipeError
from vft.core.recipe.checks import key_text, show

#: a field without a default
REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()


class FieldError(RecipeError):
    """A value a table refuses, with the key path (`loc`) it sits at, so that a caller can
    name it from further out (`backend.modal.` + `timeout_hours`)."""

    def __init__(self, loc: list[Any], message: str, *, hint: str | None = None) -> None:
        self.loc = loc
        self.reason = message
        super().__init__(key_text(loc), message, hint=hint)

    def under(self, *prefix: Any) -> FieldError:
        return FieldError([*prefix, *self.loc], self.reason, hint=self.hint)


class FieldInfo:
    """One field: its declaration, and the `annotation` and `name` of the class it is in."""

    def __init__(
        self,
        default: Any = REQUIRED,
        *,
        default_factory: Callable[[], Any] | None = None,
        description: str | None = None,
        ge: float | None = None,
        gt: float | None = None,
        le: float | None = None,
        min_length: int | None = None,
        pattern: str | None = None,
        pattern_text: str | None = None,
        check: Callable[[Any], Any] | None = None,
        before: Callable[[Any], Any] | None = None,
    ) -> None:
        self.default = default
        self.default_factory = default_factory
        self.description = description
        self.ge, self.gt, self.le = ge, gt, le
        self.min_length = min_length
        self.pattern = pattern
        self.pattern_text = pattern_text or f"use text matching {pattern}"
        self.check = check
        self.before = before
        self.name = ""
        self.annotation: Any = None
        self.kind: tuple[Any, ...] = ()
        self.optional = False

    def is_required(self) -> bool:
        return self.default is REQUIRED and self.default_factory is None

    def get_default(self, *, call_default_factory: bool = False) -> Any:
        if self.default_factory is not None:
            return self.default_factory() if call_default_factory else None
        return None if self.default is REQUIRED else self.default

    def fresh_default(self) -> Any:
        """The default an instance gets: a new list or table each time; a float field's
        `300` as 300.0, as if it had been given."""
        value = self.get_default(call_default_factory=True)
        if isinstance(value, list | dict) and self.default_factory is None:
            return copy.deepcopy(value)  # `xs: list[str] = []` is not shared by instances
        return float(value) if self.kind == ("float",) and type(value) is int else value

    def bounds(self) -> str:
        """`1 to 2147483647`, `greater than 0, at most 1`: a numeric field's range, or ''."""
        low = high = ""
        if self.ge is not None:
            low = _number(self.ge)
        elif self.gt is not None:
            low = f"greater than {_number(self.gt)}"
        if self.le is not None:
            high = _number(self.le)
        if low and high:
            return f"{low} to {high}" if not low.startswith("greater") else f"{low}, at most {high}"
        return low or (f"at most {high}" if high else "")

    def __repr__(self) -> str:
        return f"FieldInfo({self.name}: {self.annotation!r}, default={self.default!r})"


def field(default: Any = REQUIRED, **options: Any) -> Any:
    """Declare a field (the options are `FieldInfo`'s): bounds (ge/gt/le) for numbers,
    min_length and pattern (with `pattern_text`, what is allowed in words) for text.
    `check(value)` runs after the type is right (on each item of an array field): it returns
    the value or raises ValueError (shown as "VALUE is not allowed: MESSAGE") or a
    RecipeError of its own. `before(raw)` reshapes the raw value before anything is checked.
    Typed `Any` so that `steps: int = field(10, ge=1)` reads as an int to a type checker."""
    return FieldInfo(default, **options)


def _number(value: float) -> str:
    """2147483647, 86400, 0.5: as a user would write it."""
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:g}"


def _kind(ann: Any) -> tuple[Any, ...]:
    """The validator's view of an annotation: ('int',), ('list', item), ('table', cls), ..."""
    origin = typing.get_origin(ann)
    if ann is Any:
        return ("any",)
    if ann in (int, float, bool, str):
        return (ann.__name__,)
    if origin is typing.Literal:
        values = typing.get_args(ann)
        if not all(type(v) in (str, int, bool) for v in values):
            raise TypeError(f"{ann!r}: a literal is text, an integer or a boolean")
        return ("literal", values)
    if origin is list:
        return ("list", _kind(typing.get_args(ann)[0]))
    if origin is dict:
        key, value = typing.get_args(ann)
        if key is not str:
            raise TypeError(f"table keys are strings, not {key!r}")
        return ("dict", _kind(value))
    if isinstance(ann, type) and issubclass(ann, Table):
        return ("table", ann)
    raise TypeError(f"{ann!r} is not a type a table field can have")


def _check_constraints(cls: type, info: FieldInfo) -> None:
    """A constraint a field's type cannot have is a mistake in its declaration, not one
    to ignore: bounds are for numbers, min_length and pattern for text (not a list's items:
    the JSON Schema would not say so)."""
    tag = info.kind[0]
    where = f"{cls.__name__}.{info.name}"
    numeric = (info.ge, info.gt, info.le)
    if tag not in ("int", "float") and any(b is not None for b in numeric):
        raise TypeError(f"{where}: ge/gt/le bound numbers, not {info.annotation!r}")
    if tag != "str" and (info.min_length is not None or info.pattern is not None):
        raise TypeError(f"{where}: min_length/pattern constrain text, not {info.annotation!r}")


def _split_optional(ann: Any) -> tuple[Any, bool]:
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = typing.get_args(ann)
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return rest[0], True
        raise TypeError(f"{ann!r}: only `X | None` unions are supported")
    return ann, False


class Table:
    """A TOML table with declared fields (see the module docstring); subclasses declare
    `name: type = field(...)` and get validation, dumping and a JSON Schema."""

    model_fields: ClassVar[dict[str, FieldInfo]] = {}
    _fields_set: set[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: dict[str, FieldInfo] = dict(cls.model_fields)
        namespace = vars(sys.modules[cls.__module__])
        for name, ann in inspect.get_annotations(cls).items():
            text = ann if isinstance(ann, str) else ""
            if name.startswith("_") or text.startswith(("ClassVar", "typing.ClassVar")):
                continue
            value = cls.__dict__.get(name, REQUIRED)
            info = value if isinstance(value, FieldInfo) else FieldInfo(value)
            info.name = name
            # the annotation text evaluated in its module, as typing.get_type_hints does
            info.annotation = eval(ann, namespace) if isinstance(ann, str) else ann
            base, info.optional = _split_optional(info.annotation)
            info.kind = _kind(base)
            _check_constraints(cls, info)
            fields[name] = info
            if name in cls.__dict__:
                delattr(cls, name)  # the value lives on the instance
        cls.model_fields = fields

    def __init__(self, **data: Any) -> None:
        _fill(self, data, [])

    # -- pydantic's names, the subset vft and plugins use ----------------------------------

    @classmethod
    def model_validate(cls, data: Any) -> typing.Self:
        """The table from data (a dict, or an instance, returned as is); FieldError if not."""
        if isinstance(data, cls):
            return data
        return typing.cast(typing.Self, _table(cls, data, []))

    @property
    def model_fields_set(self) -> set[str]:
        """The fields given (in the data, or assigned since), not defaulted."""
        return set(self._fields_set)

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]:
        """Plain data; mode="json": dates as ISO text and inf/nan as None, as JSON holds them."""
        return {name: _dump(getattr(self, name), mode == "json") for name in self.model_fields}

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]:
        """A JSON Schema (draft 2020-12) of the table: types, bounds, enums, defaults."""
        from vft.core.recipe.table_schema import json_schema

        return json_schema(cls)

    # -- plain object behaviour ------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        """Assignment is validated as loading is: a recipe never holds what a file could not."""
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        info = self.model_fields.get(name)
        if info is None:
            raise _unknown(type(self), [], name)
        self.__dict__[name] = _value(info, value, [name])
        self._fields_set.add(name)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.model_fields)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.model_fields)
        return f"{type(self).__name__}({inner})"


# -- validation ---------------------------------------------------------------------------


def _table(cls: type[Table], data: Any, loc: list[Any]) -> Table:
    if not isinstance(data, dict):
        raise FieldError(loc, f"{show(data)} is not allowed: use a table")
    obj = object.__new__(cls)
    _fill(obj, data, loc)
    return obj


def _fill(obj: Table, data: dict[str, Any], loc: list[Any]) -> None:
    """Every field in declaration order, then the keys no field has: the first fault is
    the one reported."""
    cls = type(obj)
    given: set[str] = set()
    for name, info in cls.model_fields.items():
        if name in data:
            obj.__dict__[name] = _value(info, data[name], [*loc, name])
            given.add(name)
        elif info.is_required():
            raise _missing(cls, data, [*loc, name])
        else:
            obj.__dict__[name] = info.fresh_default()
    for key in data:
        if not isinstance(key, str):
            raise FieldError(
                [*loc, key], f"{show(data[key])} is not allowed: Keys should be strings"
            )
        if key not in cls.model_fields:
            raise _unknown(cls, loc, key)
    object.__setattr__(obj, "_fields_set", given)


def _unknown(cls: type[Table], loc: list[Any], key: str) -> FieldError:
    known = list(cls.model_fields)
    close = difflib.get_close_matches(key[:100], known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(known)}"
    return FieldError([*loc, key], "unknown key", hint=hint)


def _missing(cls: type[Table], data: dict[Any, Any], loc: list[Any]) -> FieldError:
    """A required key is missing: when a stray key beside it is a misspelling of it, say so
    (`nmae = ...` is the reason `name` is missing)."""
    strays = [str(k)[:100] for k in data if str(k) not in cls.model_fields]
    close = difflib.get_close_matches(loc[-1], strays, n=1)
    if close:
        return FieldError(loc, f"is required; {close[0]!r} is not a key: did you mean {loc[-1]!r}?")
    return FieldError(loc, "is required")


def _value(info: FieldInfo, raw: Any, loc: list[Any]) -> Any:
    if info.before is not None:
        raw = info.before(raw)
    if raw is None and info.optional:
        return None
    value = _typed(info, info.kind, raw, loc)
    if info.check is not None and info.kind[0] != "list":
        value = _checked(info.check, value, loc)
    return value


def _checked(check: Callable[[Any], Any], value: Any, loc: list[Any]) -> Any:
    try:
        return check(value)
    except RecipeError:
        raise
    except ValueError as exc:
        raise FieldError(loc, f"{show(value)} is not allowed: {exc}") from None


#: what each kind asks for, in the recipe's (TOML's) words
_WANTED = {
    "int": "use a whole number",
    "float": "use a number",
    "bool": "use true or false",
    "str": "use a string (in quotes)",
    "list": "use an array ([...])",
    "dict": "use a table",
    "table": "use a table",
}


def _typed(info: FieldInfo, kind: tuple[Any, ...], raw: Any, loc: list[Any]) -> Any:
    """`raw` as the kind's value, or a FieldError saying what is allowed."""
    tag = kind[0]

    def refuse(why: str) -> FieldError:
        return FieldError(loc, f"{show(raw)} is not allowed: {why}")

    def wrong(why: str) -> FieldError:
        bounds = info.bounds() if tag in ("int", "float") else ""
        return refuse(f"{why} (allowed: {bounds})" if bounds else why)

    if tag == "any":
        return raw
    if tag in ("int", "float", "bool") and isinstance(raw, str) and _unquoted(tag, raw):
        raise refuse(f"that is text; write {raw.strip()} without quotes")
    if tag == "int":
        if type(raw) is not int:
            raise wrong(_WANTED[tag])
        return _in_bounds(info, raw, refuse)
    if tag == "float":
        if type(raw) is int:
            try:
                value = float(raw)
            except OverflowError:
                raise wrong(_WANTED[tag]) from None
        elif type(raw) is float:
            if not math.isfinite(raw):
                raise wrong("use a finite number, not inf or nan")
            value = raw
        else:
            raise wrong(_WANTED[tag])
        return _in_bounds(info, value, refuse)
    if tag == "bool":
        if type(raw) is not bool:
            raise wrong(_WANTED[tag])
        return raw
    if tag == "str":
        if not isinstance(raw, str):
            raise wrong(_WANTED[tag])
        if info.min_length is not None and len(raw) < info.min_length:
            s = "" if info.min_length == 1 else "s"
            raise refuse(f"String should have at least {info.min_length} character{s}")
        if info.pattern is not None and re.fullmatch(info.pattern, raw) is None:
            raise refuse(info.pattern_text)
        return raw
    if tag == "literal":  # `1` is not `true`, nor `"1"`: the type must be the value's
        if not any(type(raw) is type(v) and raw == v for v in kind[1]):
            raise refuse(f"Input should be {_either(kind[1])}")
        return raw
    if tag == "list":
        if not isinstance(raw, list | tuple):
            raise wrong(_WANTED[tag])
        items = []
        for i, item in enumerate(raw):
            value = _typed(info, kind[1], item, [*loc, i])
            if info.check is not None:
                value = _checked(info.check, value, [*loc, i])
            items.append(value)
        return items
    if tag == "dict":
        if not isinstance(raw, dict):
            raise wrong(_WANTED[tag])
        out = {}
        for key, item in raw.items():
            if not isinstance(key, str):
                raise FieldError(
                    [*loc, key], f"{show(item)} is not allowed: Keys should be strings"
                )
            out[key] = _typed(info, kind[1], item, [*loc, key])
        return out
    if tag == "table":
        cls = kind[1]
        return raw if isinstance(raw, cls) else _table(cls, raw, loc)
    raise AssertionError(tag)


def _unquoted(tag: str, raw: str) -> bool:
    """Whether `raw` is what the field wants, written in quotes (`max_steps = "200"`)."""
    text = raw.strip()
    if tag == "bool":
        return text in ("true", "false")
    try:
        number = int(text) if tag == "int" else float(text)
    except ValueError:
        return False
    return tag == "int" or math.isfinite(number)


def _in_bounds(info: FieldInfo, value: Any, refuse: Callable[[str], FieldError]) -> Any:
    low_ok = (info.ge is None or value >= info.ge) and (info.gt is None or value > info.gt)
    if not (low_ok and (info.le is None or value <= info.le)):
        bounds = info.bounds()  # `1 to 10`, `greater than 0, at most 1`, `at most 24`
        raise refuse(f"it must be {'from ' if bounds[:1] in '-0123456789' else ''}{bounds}")
    return value


def _either(values: Iterable[Any]) -> str:
    shown = [repr(v) for v in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


# -- dumping ------------------------------------------------------------------------------


def _dump(value: Any, json: bool) -> Any:
    if isinstance(value, Table):
        return value.model_dump(mode="json" if json else "python")
    if isinstance(value, dict):
        return {k: _dump(v, json) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_dump(v, json) for v in value]
    if json:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, datetime.datetime | datetime.time):
            text = value.isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        if isinstance(value, datetime.date):
            return value.isoformat()
    return value
