"""The report's HTML building blocks: escaping, number formatting, cells and tables.

A leaf that :mod:`.page` and :mod:`.results` both import (before, ``results`` borrowed these
from ``page`` while ``page`` imported ``results``: an import circle). Strings in, strings out.
"""

from __future__ import annotations

import html
from typing import Any


def table(head: list[str], rows: list[list[str]], highlight_first: bool = False) -> str:
    """A table; a cell that is not already a ``<td ...>`` is wrapped in one."""
    out = ["<div class=scroll><table><thead><tr>", *(f"<th>{esc(h)}</th>" for h in head),
           "</tr></thead><tbody>"]
    for i, cells in enumerate(rows):
        css = " class=best" if highlight_first and i == 0 else ""
        out.append(f"<tr{css}>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>"
                                          for c in cells) + "</tr>")
    return "".join(out) + "</tbody></table></div>"


def num_cell(value: Any) -> str:
    """A right-aligned cell with tabular figures."""
    return f"<td class=num>{esc(value)}</td>"


def fmt(value: Any) -> str:
    """A param string as written, numbers shortened (0.0020991729 -> 0.002099)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(value) if number.is_integer() and "e" not in str(value).lower() else f"{number:.4g}"


def esc(value: Any) -> str:
    """``value`` as text safe inside an element or a quoted attribute."""
    return html.escape(str(value), quote=True)
