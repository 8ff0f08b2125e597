"""Plain-text layout for the commands' human views: tables, wrapped lines, commands.

Small on purpose: `vft plan` and `vft backends` answer in a few tens of milliseconds, and
a rich console costs about as much as the rest of the command. Every text is wrapped at
spaces, never inside a word; a word longer than the line keeps a line of its own.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

SEP = " │ "
MIN_WIDTH = 40


def width() -> int:
    """The terminal's columns (COLUMNS when set), 80 when not a terminal."""
    import shutil

    return max(MIN_WIDTH, shutil.get_terminal_size((80, 24)).columns)


def wrap(text: str, columns: int, indent: str = "", first: str = "") -> list[str]:
    """`first` + text, wrapped at spaces to `columns`; continuation lines start with `indent`.

    A word longer than a whole line may also break after a '/' (`A10G/H100/...`)."""
    lines: list[str] = []
    line = first
    empty = True  # nothing but the prefix on `line` yet
    for word, glue in _tokens(text, columns - len(indent)):
        if empty:
            line += word
            empty = False
        elif len(line) + len(glue) + len(word) <= columns:
            line += glue + word
        else:
            lines.append(line)
            line, empty = indent + word, False
    lines.append(line)
    return lines


def phrases(parts: Sequence[str], columns: int, indent: str = "", sep: str = ", ") -> list[str]:
    """`parts` joined by `sep`, a line breaking only between parts (never inside a phrase
    such as "trainer 1 process(es)"); a part longer than a whole line is wrapped alone."""
    lines: list[str] = []
    line = ""
    for k, part in enumerate(parts):
        piece = part + (sep.rstrip() if k < len(parts) - 1 else "")
        if not line:
            start = indent if lines else ""
        elif len(line) + 1 + len(piece) <= columns:
            line += " " + piece
            continue
        else:
            lines.append(line)
            start = indent
        if len(start) + len(piece) <= columns:
            line = start + piece
        else:  # longer than a line: its words wrap, the next part goes on after it
            *done, line = wrap(piece, columns, indent=indent, first=start)
            lines += done
    lines.append(line)
    return lines


def _tokens(text: str, room: int) -> list[tuple[str, str]]:
    """(word, what joins it to the one before): words, and the '/'-parts of long words."""
    out: list[tuple[str, str]] = []
    for word in text.split(" "):
        if not word:
            continue
        if len(word) <= room or "/" not in word.strip("/"):
            out.append((word, " "))
            continue
        parts = word.split("/")
        pieces = [p + "/" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
        out += [(piece, " " if k == 0 else "") for k, piece in enumerate(pieces)]
    return out


def command(argv: Sequence[str], columns: int, indent: str = "  ") -> list[str]:
    """A command as shell text, wrapped between arguments with ` \\` continuations, so
    that it can be pasted; an option stays on the line of its value."""
    words = [shlex.quote(a) for a in argv]
    groups: list[str] = []
    for word in words:
        joins = groups and groups[-1].startswith("-") and " " not in groups[-1]
        if joins and not word.startswith("-"):
            groups[-1] += " " + word
        else:
            groups.append(word)
    lines: list[str] = []
    line = indent
    cont = indent + "    "
    for group in groups:
        if line.strip() == "":
            line += group
        elif len(line) + 1 + len(group) + 2 <= columns:  # room for the ` \` of the next break
            line += " " + group
        else:
            lines.append(line + " \\")
            line = cont + group
    lines.append(line)
    return lines


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], columns: int) -> list[str]:
    """Columns separated by ` │ `, a rule under the headers; a cell too wide for its share
    of `columns` wraps at spaces (the widest column gives way first)."""
    n = len(headers)
    cells = [list(headers), *[list(r) for r in rows]]
    natural = [max(len(row[i]) for row in cells) for i in range(n)]
    least = [
        max([len(headers[i]), *(len(w) + 1 for row in rows for w in _words(row[i]))])
        for i in range(n)
    ]
    widths = list(natural)
    room = columns - len(SEP) * (n - 1)
    while sum(widths) > room:
        i = max(range(n), key=lambda k: widths[k] - least[k])
        if widths[i] <= least[i]:
            break  # every column is down to its longest word: the line runs over
        widths[i] -= 1
    out = [_row(headers, widths), "─┼─".join("─" * w for w in widths)]
    for row in rows:
        out += _wrapped_row(row, widths)
    return out


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return SEP.join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _wrapped_row(cells: Sequence[str], widths: Sequence[int]) -> list[str]:
    parts = [wrap(c, w) for c, w in zip(cells, widths, strict=True)]
    height = max(len(p) for p in parts)
    return [_row([p[k] if k < len(p) else "" for p in parts], widths) for k in range(height)]


def _words(cell: str) -> list[str]:
    """The pieces a cell cannot break inside: words, or the '/'-parts of one."""
    return [p for w in cell.split(" ") for p in w.split("/")]


def keyed_table(
    key: str,
    cols: Sequence[str],
    rows: Sequence[Sequence[str]],
    columns: int,
    *,
    optional: Sequence[str] = (),
) -> Any:
    """A rich Table whose first column (`key`: what users copy into another command, a run
    name or an environment id) is never cut or wrapped. The other columns keep their
    natural width when all fit; else they wrap between words (their headers too), each
    down to its longest word; while even that does not fit, the `optional` columns, least
    important first, are left out and the caption says which. A key wider than the
    terminal by itself runs over the line (print the table with crop=False), as `table`
    does, rather than lose its end."""
    from rich.table import Table

    key_width = max((len(r[0]) for r in rows), default=len(key))
    key_width = max(key_width, len(key))
    shown = list(cols)
    left_out: list[str] = []
    cells = {c: [r[i + 1] for r in rows] for i, c in enumerate(cols)}
    natural = {c: max(map(len, [c, *cells[c]])) for c in cols}
    tight = {c: max(len(w) for text in [c, *cells[c]] for w in text.split()) for c in cols}

    def need(names: Sequence[str], size: dict[str, int]) -> int:
        frame = 3 * (len(names) + 1) + 1  # borders and one space each side of every cell
        return key_width + sum(size[c] for c in names) + frame

    drop = [c for c in optional if c in cols]
    while need(shown, tight) > columns and drop:
        gone = drop.pop(0)
        shown.remove(gone)
        left_out.append(gone)
    sizes = natural if need(shown, natural) <= columns else tight
    table = Table(expand=False, caption_justify="left")
    if need(shown, sizes) > columns:
        table.width = need(shown, sizes)
    table.add_column(key, no_wrap=True, min_width=key_width)
    for c in shown:
        table.add_column(c, width=sizes[c])
    for r in rows:
        table.add_row(r[0], *(r[i + 1] for i, c in enumerate(cols) if c in shown))
    if left_out:
        table.caption = f"(narrow terminal: {', '.join(left_out)} not shown)"
    return table
