"""The rows a bench script hands to bench/table.py: one dict per metric, written as JSON.

A row: ``metric`` (what is measured), ``anchor`` (the plain tool measured in the same run, as
text, or "n/a (...)"), ``ours`` (this package's figure, a number or None), ``ratio`` (ours ÷
anchor where both are numbers, else None), ``target`` (text, e.g. ">= 0.80"), ``met`` (True,
False, or None when there is no target or no figure) and ``limit`` (what limits a missed row,
from what the script measured; "" when met).
"""

from __future__ import annotations

import json
import operator

_OPS = {">=": operator.ge, "<=": operator.le}


def row(metric: str, ours: float | None, target: str = "", anchor: str = "",
        anchor_value: float | None = None, limit: str = "", unit: str = "") -> dict:
    """A row; ``target`` like ">= 0.80" or "<= 3 s" decides ``met`` from ``ours``."""
    met = None
    if ours is not None and target:
        op, _, rest = target.partition(" ")
        if op in _OPS:
            met = bool(_OPS[op](ours, float(rest.split()[0].rstrip("sx×"))))
    ratio = (ours / anchor_value if ours is not None and anchor_value else None)
    return {"metric": metric, "anchor": anchor, "ours": ours, "unit": unit, "ratio": ratio,
            "target": target, "met": met, "limit": "" if met else limit}


def write(path: str | None, rows: list[dict]) -> None:
    """Write ``rows`` to ``path`` (``--json``); nothing when no path was given."""
    if path:
        with open(path, "w") as f:
            json.dump({"rows": rows}, f, indent=1)
