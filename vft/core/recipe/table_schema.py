"""The JSON Schema (draft 2020-12) of a table (vft.core.recipe.tables), laid out as
pydantic writes one (keys sorted, properties in declaration order), so that `vft schema`
and editors see types, bounds, enums, defaults and descriptions."""

from __future__ import annotations

import inspect
from typing import Any

from vft.core.recipe.tables import REQUIRED, FieldInfo, Table


def json_schema(cls: type[Table]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    schema = _table_schema(cls, defs)
    if defs:
        schema["$defs"] = {k: defs[k] for k in sorted(defs)}
    result: dict[str, Any] = _sorted(schema)
    return result


def _table_schema(cls: type[Table], defs: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "additionalProperties": False,
        "properties": {name: _field_schema(info, defs) for name, info in cls.model_fields.items()},
        "title": cls.__name__,
        "type": "object",
    }
    required = [name for name, info in cls.model_fields.items() if info.is_required()]
    if required:
        schema["required"] = required
    doc = cls.__dict__.get("__doc__")
    if doc:
        schema["description"] = inspect.cleandoc(doc)
    return schema


def _field_schema(info: FieldInfo, defs: dict[str, Any]) -> dict[str, Any]:
    inner = _kind_schema(info, info.kind, defs)
    if "$ref" in inner and not info.optional:
        return inner
    out: dict[str, Any] = {"anyOf": [inner, {"type": "null"}]} if info.optional else dict(inner)
    if info.default is not REQUIRED and info.default_factory is None:
        out["default"] = info.default
    if info.description:
        out["description"] = info.description
    out["title"] = info.name.replace("_", " ").title()
    return out


def _kind_schema(info: FieldInfo, kind: tuple[Any, ...], defs: dict[str, Any]) -> dict[str, Any]:
    tag = kind[0]
    if tag == "any":
        return {}
    if tag in ("int", "float"):
        out: dict[str, Any] = {"type": "integer" if tag == "int" else "number"}
        for key, bound in (
            ("minimum", info.ge),
            ("exclusiveMinimum", info.gt),
            ("maximum", info.le),
        ):
            if bound is not None:
                out[key] = bound
        return out
    if tag == "bool":
        return {"type": "boolean"}
    if tag == "str":
        out = {"type": "string"}
        if info.min_length is not None:
            out["minLength"] = info.min_length
        if info.pattern is not None:
            out["pattern"] = info.pattern
        return out
    if tag == "literal":
        names = {bool: "boolean", int: "integer", str: "string"}
        types = sorted({names[type(v)] for v in kind[1]})
        return {"enum": list(kind[1]), "type": types[0] if len(types) == 1 else types}
    if tag == "list":
        return {"items": _kind_schema(_PLAIN, kind[1], defs), "type": "array"}
    if tag == "dict":
        value = _kind_schema(_PLAIN, kind[1], defs)
        return {"additionalProperties": value if value else True, "type": "object"}
    if tag == "table":
        cls = kind[1]
        if cls.__name__ not in defs:
            defs[cls.__name__] = {}  # a placeholder against recursion
            defs[cls.__name__] = _table_schema(cls, defs)
        return {"$ref": f"#/$defs/{cls.__name__}"}
    raise AssertionError(tag)


#: a field with no constraints, for the items of an array or a table
_PLAIN = FieldInfo()


def _sorted(schema: Any, *, keep: bool = False) -> Any:
    """Keys in sorted order (as pydantic writes them), except a table's properties, which
    keep the declaration order."""
    if isinstance(schema, dict):
        keys = list(schema) if keep else sorted(schema)
        return {k: _sorted(schema[k], keep=k == "properties" and not keep) for k in keys}
    if isinstance(schema, list):
        return [_sorted(v) for v in schema]
    return schema
