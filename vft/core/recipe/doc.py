"""The recipe reference table in README.md, generated from the Recipe model so it cannot drift."""

from __future__ import annotations

from pathlib import Path

from vft.core.recipe.schema import Recipe
from vft.core.recipe.tables import Table


def reference_rows(model: type[Table] = Recipe, prefix: str = "") -> list[str]:
    rows: list[str] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, Table):
            rows += reference_rows(ann, key + ".")
            continue
        default = (
            "required"
            if field.is_required()
            else f"`{field.get_default(call_default_factory=True)!r}`"
        )
        desc = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{key}` | {default} | {desc} |")
    return rows


def reference_table() -> str:
    return "\n".join(["| key | default | meaning |", "| --- | --- | --- |", *reference_rows()])


def write_readme(path: str = "README.md") -> None:
    """Replaces the README's generated section (between its two markers) with the table."""
    start, end = "<!-- recipe-reference:start -->", "<!-- recipe-reference:end -->"
    readme = Path(path)
    head, rest = readme.read_text(encoding="utf-8").split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{reference_table()}\n{end}{tail}", encoding="utf-8")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--write"]:
        write_readme()
    else:
        print(reference_table())
