"""The report's HTML building blocks: escaping, number formatting, cells and tables.

A leaf that :mod:`.page` and :mod:`.results` both import (before, ``results`` borrowed these
from ``page`` while ``page`` imported ``results``: an import circle). Strings in, strings out.
"""

from __future__ import annotations

import html
import re
from typing import Any

WORD = 10  # a value this short keeps one line in a table


def table(head: list[str], rows: list[list[str]], highlight_first: bool = False,
          css: str = "") -> str:
    """A table of class ``css``; a header that is not already a ``<th ...>`` is made one
    (:func:`breakable`), a cell that is not already a ``<td ...>`` is wrapped in one."""
    heads = (h if h.startswith("<th") else f"<th>{breakable(h)}</th>" for h in head)
    out = [f"<div class=scroll><table{f' class={css}' if css else ''}><thead><tr>", *heads,
           "</tr></thead><tbody>"]
    for i, cells in enumerate(rows):
        best = " class=best" if highlight_first and i == 0 else ""
        out.append(f"<tr{best}>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>"
                                          for c in cells) + "</tr>")
    return "".join(out) + "</tbody></table></div>"


def num_cell(value: Any) -> str:
    """A right-aligned cell with tabular figures."""
    return f"<td class=num>{esc(value)}</td>"


def value_cell(text: str) -> str:
    """A cell for a hyper-parameter's value: kept on one line when it is one short word
    (``0.0001235``, ``leaky_relu``), free to wrap when longer (``[256, 128, 64]``)."""
    word = len(text) <= WORD and not any(c.isspace() for c in text)
    return f"<td class=word>{esc(text)}</td>" if word else f"<td>{esc(text)}</td>"


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


def breakable(text: Any) -> str:
    """Escaped ``text`` that may wrap after a dot, an underscore or a slash (``<wbr>``): a
    header such as ``training.learning_rate`` then takes a narrow column, not the page."""
    return re.sub(r"([._/])", r"\1<wbr>", esc(text))


def short_names(names: list[str]) -> dict[str, str]:
    """Each dotted key's shortest ending that no other key in ``names`` shares
    (``training.learning_rate`` -> ``learning_rate``; ``model.units`` beside
    ``model.params.units`` stays ``model.units``)."""
    out = {}
    for name in names:
        parts = name.split(".")
        for i in range(len(parts) - 1, -1, -1):
            tail = ".".join(parts[i:])
            if not any(o != name and (o == tail or o.endswith("." + tail)) for o in names):
                break
        out[name] = tail
    return out
