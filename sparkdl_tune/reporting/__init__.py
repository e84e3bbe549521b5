"""The report of a search: PNG plots and one self-contained HTML page, read from MLflow alone.

Driver side. ``report(cfg.mlflow, "my-search", "out/tune/my-search/report")`` finds the
search's parent run (by name or run id), reads its trials and final retrain
(:mod:`.search`), draws the figures (:mod:`.plots`) and the page (:mod:`.page`):

- ``best_so_far.png``: each trial's value of the search metric and the running best;
- ``learning_curves.png``: the search metric (and a loss) per epoch, one line per trial;
- ``time_vs_test.png``: each trial's training time against its test metric;
- ``importance.png``: |Spearman ρ| of numeric and η² of categorical parameters with the
  objective (an association from few points, not a causal effect);
- ``heatmap_<a>__<b>.png``: the mean objective over bins of two parameters, for the pairs
  asked for, else every pair among the three most important;
- ``pareto.png``: with ``search.objectives``, each trial's metric against its second
  objective, the Pareto front and the model chosen for retraining;
- ``report.html``: all of them inlined, the top trials, the failures, the best parameters and
  the final model's test metrics; it opens offline.

The folder is built beside ``out_dir`` and renamed into place, so a reader sees the previous
report or the new one, never half of one; the files are then logged to the parent run under
``report/``. The tune workflow calls this at its end unless ``search.report: false``; the
CLI's ``sparkdl-tune report <search>`` at any time, even while the search runs.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
import time
from typing import Optional

from .. import logs
from ..config.schema import MlflowSettings
from ..errors import ConfigError, public
from ..files import replace_dir
from .search import Param, Search, find_parent, importance, load_search, varied_params

__all__ = ["report", "parse_pairs", "find_parent", "load_search", "Search", "Param"]

log = logs.get("report")

HEATMAP_PARAMS = 3  # default heat-maps: every pair among this many most important parameters


@public
def report(settings: MlflowSettings, search: str, out_dir: str,
           pairs: Optional[list[tuple[str, str]]] = None) -> dict[str, str]:
    """Write the report of ``search`` into ``out_dir`` and log it to the search's parent run.

    Args:
        settings: The MLflow store and experiment (``cfg.mlflow``).
        search: The search's name (``search.name``) or its parent run id.
        out_dir: Destination folder; replaced as a whole.
        pairs: Hyper-parameter pairs for heat-maps, by full dotted name or a unique ending
            (``learning_rate``); default: every pair among the three most important.

    Returns:
        File name -> absolute path of every file written (``report.html`` always).

    Raises:
        ConfigError: No such search, a pair names a parameter the search did not vary, or
            ``out_dir`` or the store's artifact folder cannot be written.
    """
    from ..config.writable import check_folder
    from ..tracking.uri import check_writable
    from . import page, plots

    check_folder("out_dir", out_dir, "report folder")  # before the search is read
    check_writable(settings)
    started = time.monotonic()
    data = load_search(settings, search)
    params = varied_params(data)
    scores = importance(data, params)
    chosen = _pairs(pairs, params, scores)
    final = os.path.abspath(out_dir)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    tmp = tempfile.mkdtemp(dir=os.path.dirname(final), prefix=f".{os.path.basename(final)}.")
    try:
        by_name = {p.name: p for p in params}
        figures = {
            "best_so_far.png": lambda path: plots.best_so_far(data, path),
            "learning_curves.png": lambda path: plots.learning_curves(data, path),
            "time_vs_test.png": lambda path: plots.time_vs_test(data, path),
            "pareto.png": lambda path: plots.pareto_front(data, path),
            "importance.png": lambda path: plots.importance(scores, data.metric,
                                                            len(data.ok), path),
            **{f"heatmap_{_slug(a)}__{_slug(b)}.png":
               (lambda path, a=a, b=b: plots.heatmap(data, by_name[a], by_name[b], path))
               for a, b in chosen}}
        images = {}
        for name, draw in figures.items():
            if draw(os.path.join(tmp, name)):
                images[name] = os.path.join(tmp, name)
        with open(os.path.join(tmp, "report.html"), "w", encoding="utf-8") as f:
            f.write(page.page(data, params, scores, images))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a report is for sharing
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    paths = {name: os.path.join(final, name) for name in [*images, "report.html"]}
    _log_artifacts(data.run_id, paths.values())
    log.info("report: search %r, %d trials (%d failed, %d cancelled) -> %s (%.1fs)",
             data.name, len(data.trials), len(data.failed), len(data.cancelled),
             paths["report.html"],
             time.monotonic() - started)
    return paths


def parse_pairs(tokens: Optional[list[str]]) -> tuple[list[tuple[str, str]], list[str]]:
    """``["a,b", "c,d", "x.y=1"]`` -> ``([("a", "b"), ("c", "d")], ["x.y=1"])``.

    The CLI's ``--pairs`` takes every word after it, the ``key=value`` overrides that follow
    too; those are handed back.
    """
    pairs, overrides = [], []
    for token in tokens or []:
        if "=" in token:
            overrides.append(token)
            continue
        parts = [p.strip() for p in token.split(",")]
        if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
            raise ConfigError(f"--pairs takes two different hyper-parameters joined by a comma "
                              f"(e.g. training.learning_rate,model.dropout), got {token!r}")
        pairs.append((parts[0], parts[1]))
    return pairs, overrides


def _pairs(asked, params: list[Param], scores) -> list[tuple[str, str]]:
    names = [p.name for p in params]
    if asked:
        return [(_resolve(a, names), _resolve(b, names)) for a, b in asked]
    ranked = [s[0] for s in scores] + [n for n in names if n not in {s[0] for s in scores}]
    return list(itertools.combinations(ranked[:HEATMAP_PARAMS], 2))


def _resolve(name: str, names: list[str]) -> str:
    """A full name, or a unique ending after a dot (``learning_rate``)."""
    if name in names:
        return name
    ends = [n for n in names if n.endswith("." + name) or n.endswith("/" + name)]
    if len(ends) == 1:
        return ends[0]
    why = (f"it could be {' or '.join(ends)}" if ends else
           "no hyper-parameter of that name took two values in the finished trials")
    raise ConfigError(f"--pairs: {name!r}: {why}; the varied hyper-parameters are: "
                      f"{', '.join(names) or 'none'}")


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "param"


def _log_artifacts(run_id: str, paths) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    for path in paths:
        client.log_artifact(run_id, path, artifact_path="report")
