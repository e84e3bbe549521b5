"""The report's HTML page: one file, images inlined as base64 data URIs, no script, no network.

Trials are numbered from 1 here, as in the progress log and the MLflow run names.
"""

from __future__ import annotations

import base64
import os
import time

from .markup import breakable, esc, fmt, num_cell, short_names, table, value_cell
from .results import PER_CLASS, edges_html, final_html
from .search import Param, Search

CAPTIONS = {
    "best_so_far.png": "Each dot is one trial's best {metric} over its epochs; the line is the "
                       "best found up to that trial; crosses along the bottom are failed trials.",
    "learning_curves.png": "{metric} per epoch for every finished trial (and a loss beside "
                           "it); the best trial is the thick red line.",
    "time_vs_test.png": "Training time of each trial against its {metric} (validation "
                        "split: trials are compared on validation only; the final model's "
                        "test metrics are in its own section).",
    "importance.png": "How strongly each hyper-parameter goes with {metric}: |Spearman ρ| "
                      "for numeric ones (monotone relations only), η² (variance explained by "
                      "the category means) for categorical ones. With few trials it is rough.",
    "pareto.png": "Accuracy and complexity: each trial's {metric} against its second "
                  "objective (log scale); the orange step line joins the Pareto front (no "
                  "other trial is both better and smaller); the red star is the model chosen "
                  "for retraining, the dashed line the tolerance under the best.",
    "heatmap": "Mean {metric} of the trials in each cell of two hyper-parameters; dots are "
               "the trials, grey cells had none.",
}

PARAM_COLUMNS = 7  # hyper-parameter columns the trial table holds at 1280 px (the rest: one)

# Every table fits the page at 1280 px: headers wrap after . _ / (markup.breakable), text
# cells wrap anywhere, numbers and short values (markup.value_cell) never; the trial table
# is set smaller and fills the width. Long code lines (the load snippets) wrap too.
_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232a;
 margin:0;background:#f4f6f8}
main{max-width:1120px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:34px 0 10px;
 border-bottom:1px solid #e1e5ea;padding-bottom:4px}
.sub{color:#5a6570;margin:0 0 18px}code{font-size:13px;background:#f0f2f4;padding:1px 4px;
 border-radius:3px}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{flex:1 1 200px;border:1px solid #e1e5ea;
 border-radius:8px;padding:10px 14px}.card b{display:block;font-size:22px}
.card span{color:#5a6570;font-size:13px}
.notice{border-left:4px solid #d62728;background:#fdf0f0;padding:10px 14px;margin:16px 0}
table{border-collapse:collapse;font-size:13.5px;margin:4px 0;max-width:100%}
th,td{border-bottom:1px solid #e6e9ec;padding:5px 10px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600;overflow-wrap:break-word}td{overflow-wrap:anywhere}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.word{white-space:nowrap}td.more{min-width:13em}td.more span{display:block}
table.top{font-size:12.5px;width:100%}table.top th,table.top td{padding:4px 5px}
tr.best td{background:#fff6d6}td.trials{min-width:7em}.scroll{overflow-x:auto}
pre{white-space:pre-wrap;overflow-wrap:anywhere}
figure{margin:18px 0 28px}figure img{max-width:100%;height:auto;border:1px solid #e6e9ec}
figcaption{color:#5a6570;font-size:13.5px;margin-top:4px}
footer{color:#8a949e;font-size:12.5px;margin-top:36px}
"""


def page(search: Search, params: list[Param], scores: list[tuple[str, float, str]],
         images: dict[str, str], top: int = 10) -> str:
    """The whole HTML document for ``search``; ``images`` maps file names to PNG paths."""
    best, ok, failed = search.best, search.ok, search.failed
    facts = [f"metric <b>{esc(search.metric)}</b> ({esc(search.mode)}imised)",
             f"algorithm <b>{esc(search.algorithm)}</b>" if search.algorithm != "?" else "",
             f"execution {esc(search.execution_mode)}" if search.execution_mode != "?" else "",
             f"budget {search.max_trials} trials" if search.max_trials else "",
             f"MLflow parent run <code>{esc(search.run_id)}</code>"]
    parts = [f"<h1>Search <code>{esc(search.name)}</code></h1>",
             f"<p class=sub>{' · '.join(f for f in facts if f)}</p>", _cards(search)]
    if not ok:
        parts.append(f"<div class=notice><b>No trial has finished.</b> The search has "
                     f"{len(search.trials)} recorded trial(s), {len(failed)} failed; there is "
                     "nothing to plot. The failures are listed below.</div>")
    if best is not None:
        parts += ["<h2>Best parameters</h2>", table(
            ["hyper-parameter", "value"],
            [[esc(k), esc(fmt(v))] for k, v in sorted(best.params.items())])]
        parts += edges_html(search)  # a best value on the edge of its range
        parts += [f"<h2>Top {min(top, len(ok))} of {len(ok)} finished trials</h2>",
                  _top_table(search, params, scores, top)]
    parts += final_html(search)  # test details, registered model, load snippet
    parts += _baseline(search)  # search.baseline: the gain
    parts += _designs(search)  # sweep / pyramid: one table per step
    parts += _pareto(search)  # search.objectives: the front and the chosen model
    rungs = search.rung_table()
    if rungs:
        parts += ["<h2>Scheduler rungs</h2>", table(
            ["rung (epochs)", "trials that reached it", "stopped there (pruned)", "went on"],
            [[num_cell(r), num_cell(n), num_cell(p), num_cell(n - p)] for r, n, p in rungs])]
    if failed:
        parts += [f"<h2>Failed trials ({len(failed)})</h2>", _failures(search)]
    if scores:
        parts += ["<h2>Parameter importance</h2>", table(
            ["hyper-parameter", "importance", "measure"],
            [[esc(n), num_cell(f"{s:.2f}"), "|Spearman ρ|" if m == "spearman" else "η²"]
             for n, s, m in scores])]
    figures = [_figure(name, path, search) for name, path in images.items()]
    if figures:
        parts += ["<h2>Plots</h2>", *figures]
    if ok and len(params) < 2:
        parts.append("<p class=sub>No heat-map: fewer than two hyper-parameters varied over "
                     "the finished trials.</p>")
    parts.append(f"<footer>sparkdl-tune report · generated {time.strftime('%Y-%m-%d %H:%M')}"
                 " · every number here comes from the MLflow runs of this search</footer>")
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>Search {esc(search.name)}: sparkdl-tune report</title>"
            f"<style>{_CSS}</style></head>\n<body><main>\n" + "\n".join(parts)
            + "\n</main></body></html>\n")


def _cards(search: Search) -> str:
    best, final = search.best, search.final
    cancelled = f", {len(search.cancelled)} cancelled" if search.cancelled else ""
    pruned = f" ({len(search.pruned)} of them pruned)" if search.pruned else ""
    cards = [(f"{len(search.trials)}", f"trials: {len(search.ok)} finished{pruned}, "
                                       f"{len(search.failed)} failed{cancelled}")]
    if best is not None:
        cards.append((f"{best.objective:.4g}", f"best {search.metric} (trial {best.number + 1})"))
    if final and final["test"]:
        for k, v in sorted(final["test"].items()):
            if PER_CLASS.match(k) or k.startswith("test_baseline_"):
                continue  # in the final model's section
            cards.append((f"{v:.4g}", f"final model {k}"))
    elif best is not None:
        cards.append(("—", "no final model (search.retrain: false, or not finished)"))
    return "<div class=cards>" + "".join(
        f"<div class=card><b>{esc(v)}</b><span>{esc(label)}</span></div>" for v, label in cards
    ) + "</div>"


def _top_table(search: Search, params: list[Param], scores, top: int) -> str:
    """The best ``top`` trials, one row each, made to fit a 1280 px page however many
    hyper-parameters varied: their columns are headed by the end of their key (the full key
    in the legend and the tooltip); past :data:`PARAM_COLUMNS` the most important keep a
    column and the rest share one."""
    sign = -1 if search.mode == "max" else 1
    ranked = sorted(search.ok, key=lambda t: (sign * t.objective, t.number))[:top]
    key = search.val_key  # validation only: nobody picks a trial by its test score
    names, more = _param_columns([p.name for p in params], [n for n, _, _ in scores])
    short = short_names([p.name for p in params])
    staged = any(t.status == "pruned" or t.rung is not None for t in search.trials)
    folds = max((t.cv[1] for t in ranked if t.cv), default=0)  # search.cv_folds
    metric = f"{search.metric} (mean ± std of {folds} folds)" if folds else search.metric
    head = ["rank", "trial", metric, *([key] if key else []), "seconds", "epochs",
            *(["status", "rung"] if staged else []),
            *(f"<th title='{esc(n)}'>{breakable(short[n])}</th>" for n in names),
            *([f"other hyper-parameters ({len(more)})"] if more else [])]
    rows = []
    for rank, t in enumerate(ranked, 1):
        score = f"{t.objective:.4g}" + (f" ± {t.cv[0]:.2g}" if t.cv else "")
        cells = [num_cell(rank), num_cell(t.number + 1), num_cell(score)]
        if key:
            cells.append(num_cell(f"{t.validation[key]:.4g}" if key in t.validation else "—"))
        cells += [num_cell(f"{t.seconds:.1f}"), num_cell(t.epochs)]
        if staged:
            cells += [value_cell(f"pruned after epoch {t.pruned_epoch}"
                                 if t.status == "pruned" else t.status),
                      num_cell("—" if t.rung is None else t.rung)]
        cells += [value_cell(fmt(t.params.get(n, "—"))) for n in names]
        if more:  # one line per value, unless a value is long
            cells.append("<td class=more>" + " ".join(
                f"<span>{esc(short[n])}&nbsp;=&nbsp;{esc(fmt(t.params.get(n, '—')))}</span>"
                for n in more) + "</td>")
        rows.append(cells)
    shortened = [f"{esc(short[n])} = <code>{esc(n)}</code>" for n in [*names, *more]
                 if short[n] != n]
    legend = (f"<p class=sub>Columns name hyper-parameters by the end of their key: "
              f"{', '.join(shortened)}.</p>" if shortened else "")
    return table(head, rows, highlight_first=True, css="top") + legend


def _param_columns(names: list[str], by_importance: list[str]) -> tuple[list[str], list[str]]:
    """(names with a column of their own, in ``names``' order; the rest): all of them up to
    :data:`PARAM_COLUMNS`, else the most important ``PARAM_COLUMNS - 1`` (then by name)."""
    if len(names) <= PARAM_COLUMNS:
        return names, []
    order = [n for n in by_importance if n in names] + [n for n in names
                                                        if n not in by_importance]
    keep = set(order[:PARAM_COLUMNS - 1])
    return [n for n in names if n in keep], [n for n in names if n not in keep]


def _baseline(search: Search) -> list[str]:
    """The ``baseline`` record of ``study.json``: the relative error drop, both ways."""
    b = search.study.get("baseline")
    if not b:
        return []
    drops = b.get("relative_error_drop") or {}
    pct = lambda x: "—" if x is None else f"{x:.1%}"  # noqa: E731
    num = lambda x: "—" if x is None else f"{x:.4f}"  # noqa: E731
    rows = [[esc(f"best trial vs baseline ({b['metric']}, same epochs and splits)"),
             num_cell(num(b.get("score"))), num_cell(num(b.get("best_score"))),
             num_cell(pct(drops.get("validation")))]]
    if "test" in drops:
        rows.append([esc(f"final model vs baseline ({b['test_metric']})"),
                     num_cell(num(b.get("test"))), num_cell(num(b.get("final_test"))),
                     num_cell(pct(drops.get("test")))])
    config = ", ".join(f"{k}={v}" for k, v in (b.get("config") or {}).items())
    return ["<h2>Gain over the baseline</h2>",
            f"<p class=sub>baseline: the job's configuration with {esc(config)}, trained like a "
            f"trial (MLflow run <code>{esc(b.get('run_id'))}</code>); relative error drop = "
            f"{esc(b.get('formula'))}</p>",
            table(["comparison", "baseline", "search", "relative error drop"], rows)]


def _designs(search: Search) -> list[str]:
    """The ``sweep`` and ``pyramid`` records of ``study.json``: each step's table in order,
    then the result and its confirmation at the full budget."""
    out = []
    for name, title in (("sweep", "One-at-a-time sweep"), ("pyramid", "Pyramid growth")):
        study = search.study.get(name)
        if not study:
            continue
        label = "units" if name == "pyramid" else "value"
        out.append(f"<h2>{title}</h2><p class=sub>each step at {esc(study.get('trial_epochs'))}"
                   f" epochs per trial; {esc(study.get('metric', search.metric))} on the "
                   "validation split decides</p>")
        for i, step in enumerate(study.get("steps") or [], 1):
            chosen = step.get("chosen")
            head = f"<h3>{i}. {esc(step['name'])}" + (
                f": kept <code>{esc(fmt(chosen))}</code>" if chosen is not None else "") + "</h3>"
            rows = [[esc(fmt(r[label])),
                     num_cell("—" if r["score"] is None else f"{r['score']:.4g}"),
                     num_cell("—" if r["seconds"] is None else f"{r['seconds']:.1f}"),
                     num_cell("—" if r["trial"] is None else r["trial"]), esc(r["status"])]
                    for r in step.get("rows") or []]
            out += [head, table([label, study.get("metric", search.metric), "seconds",
                                  "trial", "status"], rows)]
            if step.get("note"):
                out.append(f"<p class=sub>{esc(step['note'])}</p>")
        if study.get("note"):
            out.append(f"<p>{esc(study['note'])}</p>")
        result = study.get("result")
        if result:
            out.append("<p>Result: " + ", ".join(f"<code>{esc(k)}</code> = {esc(fmt(v))}"
                                                 for k, v in sorted(result.items())) + "</p>")
        confirmed = study.get("confirmed")
        if confirmed and confirmed.get("test_metrics"):
            metrics = ", ".join(f"{esc(k)} <b>{v:.4f}</b>"
                                for k, v in sorted(confirmed["test_metrics"].items()))
            out.append(f"<p>Confirmed at the full budget: trial {esc(confirmed['trial'])}'s "
                       f"parameters retrained for {esc(confirmed.get('epochs'))} epochs on "
                       f"train+validation: {metrics}.</p>")
    return out


def _pareto(search: Search) -> list[str]:
    """The ``pareto`` record of ``study.json``: the rule, the choice and the front."""
    study = search.study.get("pareto") or {}
    if not study:
        return []
    metric, second = (study.get("objectives") or [search.metric, "?"])[:2]
    out = ["<h2>Accuracy and complexity</h2>"]
    chosen, top = study.get("chosen"), study.get("most_accurate")
    if chosen and top:
        out.append(f"<p>Retrained: <b>trial {esc(chosen['trial'])}</b> ({esc(metric)} "
                   f"{chosen['metric']:.4g}, {esc(second)} {chosen['second']:.4g}); the most "
                   f"accurate is trial {esc(top['trial'])} ({top['metric']:.4g}, "
                   f"{top['second']:.4g}). Rule: {esc(study.get('rule', ''))}.</p>")
    if study.get("reason"):
        out.append(f"<p class=sub>{esc(study['reason'])}.</p>")
    if study.get("learned_from"):
        out.append(f"<p class=sub>The search learned from: {esc(study['learned_from'])}.</p>")
    front = study.get("front") or []
    if front:
        out.append(table(["Pareto front: trial", metric, second], [
            [num_cell(p["trial"]), num_cell(f"{p['metric']:.4g}"), num_cell(f"{p['second']:.4g}")]
            for p in front]))
    return out


def _failures(search: Search) -> str:
    reasons: dict[str, list[int]] = {}
    for t in search.failed:
        reason = (t.failure or "unknown").strip()
        reason = reason if len(reason) <= 300 else reason[:299] + "…"
        reasons.setdefault(reason, []).append(t.number + 1)
    rows = [[num_cell(len(n)), f"<td class=trials>{esc(', '.join(map(str, n)))}</td>", esc(why)]
            for why, n in sorted(reasons.items(), key=lambda x: (-len(x[1]), x[0]))]
    return table(["count", "trials", "reason"], rows)


def _figure(name: str, path: str, search: Search) -> str:
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    caption = CAPTIONS.get(name, CAPTIONS["heatmap"]).format(metric=search.metric)
    title = os.path.splitext(name)[0].replace("_", " ")
    return (f"<figure><img src='data:image/png;base64,{data}' alt='{esc(title)}'>"
            f"<figcaption><b>{esc(name)}</b>: {esc(caption)}</figcaption></figure>")
