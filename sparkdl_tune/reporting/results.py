"""The report's sections on results people act on: the final model (its test details, where it
is registered and how to load it) and warnings when the best value of a numeric dimension sits
on the edge of its range. HTML fragments for :mod:`sparkdl_tune.reporting.page`.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Optional

from .markup import esc, num_cell, table

EDGE_SHARE = 0.05  # within 5% of the range (in the search's own scale) counts as the edge
PER_CLASS = re.compile(r"^test_(precision|recall|f1)_\d+$")


def edge_warnings(bounds: Mapping[str, Mapping[str, Any]], best: Mapping[str, Any],
                  share: float = EDGE_SHARE) -> list[str]:
    """One line per numeric dimension whose best value is within ``share`` of an end of its
    range, measured on a log scale for ``loguniform``; sorted by dimension."""
    lines = []
    for name, b in sorted(bounds.items()):
        value = _float(best.get(name))
        low, high = _float(b.get("low")), _float(b.get("high"))
        if value is None or low is None or high is None or high <= low:
            continue
        log = b.get("kind") == "loguniform" and low > 0 and value > 0
        scale = math.log if log else float
        where = (scale(value) - scale(low)) / (scale(high) - scale(low))
        if where >= 1 - share:
            side, way = "top", "upward"
        elif where <= share:
            side, way = "bottom", "downward"
        else:
            continue
        lines.append(f"{name}: the best trial's {value:.3g} is at the {side} of "
                     f"[{low:.3g}, {high:.3g}]{' (log scale)' if log else ''}; widen the "
                     f"range {way}")
    return lines


def edges_html(search) -> list[str]:
    best = search.best
    if best is None or not search.bounds:
        return []
    lines = edge_warnings(search.bounds, best.params)
    if not lines:
        return []
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return [f"<div class=notice><b>Best value on the edge of its range.</b> The optimum may "
            f"lie outside the space searched:<ul>{items}</ul></div>"]


def final_html(search) -> list[str]:
    """The final model's section: its registered name, the tracking URI, the load snippets,
    and its test details (regression against the mean baseline; per-class scores and the
    confusion matrix). Empty without a final model."""
    final = search.final
    if not final:
        return []
    parts = ["<h2>Final model (test split)</h2>"]
    model = final.get("model") or {}
    if model:
        rows = [["registered model", esc(model.get("registered_model") or "not registered")],
                ["model URI", f"<code>{esc(model.get('model_uri'))}</code>"],
                ["tracking URI", f"<code>{esc(model.get('tracking_uri'))}</code>"]]
        parts.append(table(["", ""], rows))
        load = model.get("load") or {}
        for label, key in (("Load it (pyfunc, <code>x</code>: float32 rows of the input "
                            "width)", "pyfunc"),
                           ("Score a Spark DataFrame (<code>features</code>: an array of "
                            "floats per row)", "spark_udf")):
            if key in load:
                parts.append(f"<p class=sub>{label}, with <code>MLFLOW_TRACKING_URI</code> "
                             f"set:</p><pre><code>{esc(load[key])}</code></pre>")
    details = final.get("evaluation") or {}
    test = final.get("test") or {}
    if details.get("task") == "regression" or "test_r2" in test:
        names = ("mse", "rmse", "mae", "r2")
        rows = [[esc(n.upper() if n != "r2" else "R²"), num_cell(_g(test.get(f"test_{n}"))),
                 num_cell(_g(test.get(f"test_baseline_{n}")))] for n in names]
        mean = details.get("train_mean")
        parts.append(table(["metric", "final model",
                            "mean baseline" + (f" (predicts {mean:.4g})" if mean is not None
                                               else "")], rows))
    if "confusion_matrix" in details:
        classes, matrix = details["classes"], details["confusion_matrix"]
        per = details["per_class"]
        scores = ("precision", "recall", "f1")
        parts.append(table(["class", "precision", "recall", "F1", "support"],
                           [[esc(c), *[num_cell(_g(per[c][k])) for k in scores],
                             num_cell(per[c]["support"])] for c in classes]))
        parts.append("<p class=sub>Confusion matrix (rows: true class, columns: predicted "
                     "class):</p>")
        parts.append(table(["true \\ predicted", *[str(c) for c in classes]],
                           [[esc(c), *[num_cell(n) for n in row]]
                            for c, row in zip(classes, matrix)]))
    return parts


def _g(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.4g}"


def _float(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
