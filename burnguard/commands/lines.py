"""Lists that stay one line per item in any terminal: fixed columns padded, the last one (free
text: a reason, a comment) cut to what is left. Plain text, so nothing wraps and an id printed
first is never cut."""

from __future__ import annotations

__all__ = ["MIN_LAST", "cut", "fit_columns"]

#: the narrowest last column worth printing (characters); below it the column is left out
MIN_LAST = 12


def cut(text: str, width: int) -> str:
    """``text`` on one line, at most ``width`` characters (an ellipsis marks a cut).

    >>> cut("spent  $12.15 of its budget", 12)
    'spent $12.1…'
    """
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def fit_columns(header: list[str], rows: list[list[str]], width: int) -> list[str]:
    """The header and one line per row, each at most ``width`` characters.

    >>> fit_columns(["id", "why"], [["a1", "a long reason to cut"]], 16)
    ['id  why', 'a1  a long reas…']
    """
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    room = width - sum(widths) - 2 * len(widths)
    lines = []
    for row in [header, *rows]:
        line = "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True))
        if room >= MIN_LAST:
            line += "  " + cut(row[-1], room)
        lines.append(line.rstrip()[:width])
    return lines
