"""The figures of a search report, drawn with matplotlib's object API (no pyplot).

Driver side; :mod:`sparkdl_tune.reporting` gathers the data from MLflow and calls these. Each
function draws one PNG and returns its path, or None when there is nothing to draw. No global
matplotlib state is touched (no ``pyplot``, no backend switch), so a notebook's own plotting is
left alone. Every figure states what it shows in its title and axis labels, keeps legends
outside the data, and uses a constrained layout so labels never overlap.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

if TYPE_CHECKING:
    from .search import Param, Search

DPI = 110
# one colour per trial up to this many (no red: red is the best); more: a colour bar
PALETTE = ["C0", "C1", "C2", "C4", "C5", "C6", "C7", "C8", "C9", "#393b79"]
ANNOTATE_UP_TO = 25   # label points with their trial number up to this many points
BEST_COLOR = FAIL_COLOR = "#d62728"


def better(mode: str) -> str:
    return "higher is better" if mode == "max" else "lower is better"


def short(label: Any, limit: int = 18) -> str:
    """A tick label that fits: long categorical values are cut with an ellipsis."""
    text = str(label)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def natural_key(value: Any) -> tuple:
    """Sort ``[8]`` before ``[16, 8]`` and ``2`` before ``10``."""
    if isinstance(value, (int, float)):
        return (0, float(value))
    parts = re.split(r"(\d+(?:\.\d+)?)", str(value))
    return (1, tuple((0, float(p)) if i % 2 else (1, p) for i, p in enumerate(parts)))


def best_so_far(search: Search, path: str) -> Optional[str]:
    """Each trial's value, the running best as a step line, failed trials in a strip below."""
    from matplotlib.ticker import MaxNLocator

    ok, failed = search.ok, search.failed
    if not ok:
        return None
    fig, axes = _figure(rows=2 if failed else 1, height_ratios=[9, 1] if failed else None)
    ax = axes[0]
    ax.scatter([t.number + 1 for t in ok], [t.objective for t in ok], s=30, color="C0",
               alpha=0.8, zorder=3, label="trial value")
    steps_x, steps_y, current = [], [], None
    for t in search.trials:  # in trial order; a failed trial keeps the best as it was
        if t.ok and (current is None or _improves(t.objective, current, search.mode)):
            current = t.objective
        if current is not None:
            steps_x.append(t.number + 1)
            steps_y.append(current)
    ax.step(steps_x, steps_y, where="post", color="C1", lw=2, zorder=2, label="best so far")
    best = search.best
    ax.scatter([best.number + 1], [best.objective], marker="*", s=260, color="C1",
               edgecolor="black", linewidth=0.8, zorder=4,
               label=f"best: trial {best.number + 1} ({search.metric} {best.objective:.4g})")
    last = max(t.number for t in search.trials) + 1
    pad = max(0.6, 0.02 * last)
    ax.set_xlim(1 - pad, last + pad)
    ax.margins(y=0.08)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"{search.metric} ({better(search.mode)})")
    ax.set_title(f"Best {search.metric} so far: search '{search.name}' "
                 f"({search.algorithm}, {len(search.trials)} trials)")
    if failed:
        strip = axes[1]
        strip.sharex(ax)
        strip.scatter([t.number + 1 for t in failed], [0] * len(failed), marker="x", s=45,
                      color=FAIL_COLOR, linewidth=1.8, label=f"failed trial ({len(failed)})")
        strip.set_yticks([0], ["failed"])
        strip.set_ylim(-1, 1)
        strip.grid(axis="y", visible=False)
        strip.spines["left"].set_visible(False)
        strip.tick_params(axis="y", length=0)
        ax.tick_params(axis="x", labelbottom=False)
    axes[-1].set_xlabel("trial number")
    fig.legend(loc="outside lower center", ncols=4, frameon=False)
    return _save(fig, path)


def learning_curves(search: Search, path: str) -> Optional[str]:
    """Per-epoch curves of the search metric (and a loss) for every finished trial."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.ticker import MaxNLocator

    keys = search.curve_keys
    trials = [t for t in search.ok if any(t.curves.get(k) for k in keys)]
    if not trials:
        return None
    best = search.best
    others = [t for t in trials if t is not best]
    many = len(trials) > len(PALETTE)
    cmap = _cmap("viridis")
    norm = Normalize(1, max(max(t.number + 1 for t in trials), 2))
    fig, axes = _figure(8.0 if len(keys) == 1 else 12.0, 5.0, ncols=len(keys))
    for ax, key in zip(axes, keys):
        longest, seen = 1, []  # seen: every curve drawn in this panel
        for i, t in enumerate([best, *others]):
            ys = t.curves.get(key) or []
            if not ys:
                continue
            longest, marker = max(longest, len(ys)), None if many or len(ys) > 15 else "o"
            seen.append(ys)
            if t is best:
                ax.plot(range(1, len(ys) + 1), ys, color=BEST_COLOR, lw=3, zorder=5,
                        marker=marker, ms=5,
                        label=f"best: trial {t.number + 1} ({t.objective:.3g})")
                continue
            color = cmap(norm(t.number + 1)) if many else PALETTE[(i - 1) % len(PALETTE)]
            ax.plot(range(1, len(ys) + 1), ys, color=color, lw=1.3,
                    alpha=0.55 if many else 0.85, marker=marker, ms=3.5,
                    label=f"trial {t.number + 1} ({t.objective:.3g})")
        ax.set_xlim(0.8, longest + 0.2)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(key + (f" ({better(search.mode)})" if key == search.metric else ""))
        title = f"{key} per epoch" + (" (the search metric)" if key == search.metric else "")
        limits = _robust_limits(seen)
        if limits is not None:
            ax.set_ylim(*limits)
            title += f"\n(y axis cut at {limits[1]:.3g}; some trials go higher)"
        ax.set_title(title)
    if many:
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes), location="right",
                     label="trial number", pad=0.01, aspect=30)
        handles = [h for h in axes[0].get_legend_handles_labels()[0]
                   if h.get_label().startswith("best:")]
        fig.legend(handles, [f"best: trial {best.number + 1} ({search.metric} "
                             f"{best.objective:.4g})"][:len(handles)],
                   loc="outside lower center", frameon=False)
    else:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right upper", frameon=False,
                   title=f"trial ({search.metric})", fontsize=9)
    fig.suptitle(f"Learning curves of {len(trials)} finished trials, best in red")
    return _save(fig, path)


def _robust_limits(curves: list[list[float]]) -> Optional[tuple[float, float]]:
    """Y limits that keep a few diverging trials from flattening all the others, or None.

    A trial diverges when its highest value is beyond the upper Tukey fence (3 IQR) of the
    trials' highest values and would squeeze the others into a third of the axis; the axis
    then stops a little above everything under the fence.
    """
    peaks = np.array([max(c) for c in curves if c and np.isfinite(max(c))], dtype=float)
    if len(peaks) < 4:
        return None
    q1, q3 = np.percentile(peaks, [25, 75])
    fence = q3 + 3 * max(q3 - q1, 1e-12)
    if peaks.max() <= fence:
        return None
    kept = np.array([v for c in curves for v in c if np.isfinite(v) and v <= fence])
    lo, top = float(kept.min()), float(kept.max())
    if peaks.max() - top < 2 * (top - lo):  # the rest would still get a third of the axis
        return None
    pad = 0.05 * ((top - lo) or abs(top) or 1.0)
    return lo - pad, top + pad


def time_vs_test(search: Search, path: str) -> Optional[str]:
    """Training time of each trial against its validation score (the search's metric).
    Trials are compared on validation only: their test scores are not shown (the file keeps
    its name); the final model's test metrics are on the page beside the final model."""
    points = [t for t in search.ok if t.seconds > 0]
    if not points:
        return None
    key = search.metric
    fig, (ax,) = _figure()
    xs = np.array([t.seconds for t in points])
    ys = np.array([t.objective for t in points])
    ax.scatter(xs, ys, s=36, color="C0", alpha=0.8, zorder=3, label="trial")
    best = search.best
    if best in points:
        ax.scatter([best.seconds], [best.objective], marker="*", s=260, color=BEST_COLOR,
                   edgecolor="black", linewidth=0.8, zorder=4,
                   label=f"best trial ({best.number + 1})")
    if len(points) <= ANNOTATE_UP_TO:
        for t in points:
            ax.annotate(str(t.number + 1), (t.seconds, t.objective), xytext=(5, 4),
                        textcoords="offset points", fontsize=8, color="0.35")
    if xs.min() > 0 and xs.max() / xs.min() > 20:
        ax.set_xscale("log")
    ax.margins(x=0.08, y=0.12)
    ax.set_xlabel("training time of the trial (s)" + (", log scale"
                                                      if ax.get_xscale() == "log" else ""))
    ax.set_ylabel(f"{key} (validation split)")
    ax.set_title(f"Training time vs {key}: {len(points)} finished trials"
                 + (" (numbers: trial)" if len(points) <= ANNOTATE_UP_TO else ""))
    fig.legend(loc="outside lower center", ncols=3, frameon=False)
    return _save(fig, path)


def importance(rows: list[tuple[str, float, str]], metric: str, n: int,
               path: str) -> Optional[str]:
    """Horizontal bars, most important on top; ``rows`` are (name, score, measure)."""
    from matplotlib.patches import Patch

    if not rows:
        return None
    colors = {"spearman": "C0", "eta2": "C2"}
    legend = {"spearman": "numeric: |Spearman ρ| with the objective",
              "eta2": "categorical: η², share of variance explained by group means"}
    fig, (ax,) = _figure(8.0, max(3.4, 1.9 + 0.42 * len(rows)))
    ordered = rows[::-1]  # barh draws bottom-up
    y = np.arange(len(ordered))
    ax.barh(y, [r[1] for r in ordered], color=[colors[r[2]] for r in ordered], height=0.6)
    for yi, (_, score, _) in zip(y, ordered):
        ax.text(score + 0.01, yi, f"{score:.2f}", va="center", fontsize=9)
    ax.set_yticks(y, [short(r[0], 40) for r in ordered])
    ax.set_xlim(0, 1.1)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("importance (0: no relation, 1: explains the objective)")
    present = sorted({r[2] for r in rows}, reverse=True)
    measures = " and ".join({"spearman": "|Spearman ρ| (numeric)",
                             "eta2": "η² (categorical)"}[m] for m in present)
    _titles(fig, f"Parameter importance for {metric}: {measures}",
            f"from {n} finished trials; an association, not a causal effect")
    fig.legend(handles=[Patch(color=colors[m], label=legend[m]) for m in present],
               loc="outside lower center", ncols=1, frameon=False, fontsize=9)
    return _save(fig, path)


def heatmap(search: Search, a: Param, b: Param, path: str) -> Optional[str]:
    """Mean objective in bins of two hyper-parameters, with the trials as dots on top."""
    from matplotlib.colors import Normalize

    rows = [(x, y, t.objective) for x, y, t in zip(a.values, b.values, search.ok)
            if x is not None and y is not None]
    if len(rows) < 2:
        return None
    nbins = int(np.clip(round(np.sqrt(len(rows) / 2)), 2, 8))
    xa, ya = _Axis(a, [r[0] for r in rows], nbins), _Axis(b, [r[1] for r in rows], nbins)
    z = np.array([r[2] for r in rows], dtype=float)
    total = np.zeros((ya.size, xa.size))
    count = np.zeros((ya.size, xa.size))
    np.add.at(total, (ya.cells, xa.cells), z)
    np.add.at(count, (ya.cells, xa.cells), 1)
    mean = np.ma.masked_where(count == 0, total / np.maximum(count, 1))
    cmap = _cmap("viridis" if search.mode == "max" else "viridis_r")
    norm = Normalize(float(z.min()), float(z.max()) if z.max() > z.min() else z.min() + 1e-9)
    fig, (ax,) = _figure(8.0, 5.8)
    ax.grid(False)
    ax.set_facecolor("0.92")
    if xa.log:
        ax.set_xscale("log")
    if ya.log:
        ax.set_yscale("log")
    mesh = ax.pcolormesh(xa.edges, ya.edges, mean, cmap=cmap, norm=norm, shading="flat")
    jitter = np.random.default_rng(0)
    ax.scatter(xa.coords(jitter), ya.coords(jitter), s=14, color="white", edgecolor="black",
               linewidth=0.6, zorder=3)
    if xa.size * ya.size <= 49:  # more cells than that: the colour alone says it
        for i in range(ya.size):
            for j in range(xa.size):
                if count[i, j]:
                    cell = cmap(norm(mean[i, j]))
                    dark = 0.299 * cell[0] + 0.587 * cell[1] + 0.114 * cell[2] < 0.5
                    # a box of the cell's colour keeps the dots from crossing the text
                    ax.text(xa.center(j), ya.center(i),
                            f"{mean[i, j]:.3g}\nn={int(count[i, j])}", ha="center",
                            va="center", fontsize=9, zorder=4, linespacing=1.15,
                            color="white" if dark else "black", fontweight="bold",
                            bbox={"boxstyle": "round,pad=0.15", "facecolor": cell,
                                  "edgecolor": "none"})
    xa.ticks(ax, "x")
    ya.ticks(ax, "y")
    ax.set_xlabel(xa.label)
    ax.set_ylabel(ya.label)
    fig.colorbar(mesh, ax=ax, label=f"mean {search.metric} ({better(search.mode)})", pad=0.02)
    _titles(fig, f"{search.metric} by {a.name} and {b.name}",
            f"cells: mean over the trials inside; dots: the {len(rows)} trials; grey: no trial")
    return _save(fig, path)


class _Axis:
    """One heat-map axis: categories (one cell each) or numeric bins (log-spaced if log)."""

    def __init__(self, param: Param, values: list, nbins: int):
        self.name, self.values = param.name, values
        distinct = sorted(set(values), key=natural_key)
        self.categorical = not param.numeric or len(distinct) <= nbins
        self.log = param.log and not self.categorical
        if self.categorical:
            self.categories = distinct
            self.cells = np.array([distinct.index(v) for v in values])
            self.edges = np.arange(len(distinct) + 1) - 0.5
        else:
            lo, hi = min(values), max(values)
            self.edges = np.geomspace(lo, hi, nbins + 1) if self.log else \
                np.linspace(lo, hi, nbins + 1)
            self.cells = np.clip(np.searchsorted(self.edges, values, side="right") - 1, 0,
                                 nbins - 1)
        self.size = len(self.edges) - 1
        self.label = self.name + (" (log scale)" if self.log else "")

    def coords(self, rng: np.random.Generator) -> np.ndarray:
        if self.categorical:  # spread the dots of a category, off the centre (the text)
            offset = rng.uniform(0.15, 0.38, len(self.cells))
            return self.cells + offset * rng.choice([-1, 1], len(self.cells))
        return np.asarray(self.values, dtype=float)

    def center(self, i: int) -> float:
        lo, hi = self.edges[i], self.edges[i + 1]
        return float(np.sqrt(lo * hi)) if self.log else float((lo + hi) / 2)

    def ticks(self, ax, which: str) -> None:
        set_lim = getattr(ax, f"set_{which}lim")
        if not self.categorical:
            lo, hi = self.edges[0], self.edges[-1]
            if self.log:
                from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

                pad = (hi / lo) ** 0.03
                set_lim(lo / pad, hi * pad)
                axis = getattr(ax, f"{which}axis")  # 0.001 0.002 0.005 rather than 2x10^-3
                decades = np.log10(hi / lo)
                axis.set_major_locator(LogLocator(10, subs=(1.0,) if decades > 3 else
                                                  (1.0, 2.0, 5.0) if decades > 0.7 else
                                                  (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0)))
                axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                axis.set_minor_formatter(NullFormatter())
            else:
                set_lim(lo - (hi - lo) * 0.03, hi + (hi - lo) * 0.03)
            return
        labels = [short(f"{c:g}" if isinstance(c, float) else c) for c in self.categories]
        getattr(ax, f"set_{which}ticks")(range(len(labels)), labels)
        set_lim(-0.5, len(labels) - 0.5)
        if which == "x" and (len(labels) > 4 or max(len(s) for s in labels) > 8):
            ax.tick_params(axis="x", labelrotation=30)
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("right")


def _titles(fig, title: str, subtitle: str) -> None:
    """A figure-wide two-line title: centred on the figure, so long tick labels on the left
    cannot push it off the edge."""
    import textwrap

    fig.suptitle(textwrap.fill(title, 95) + "\n" + textwrap.fill(subtitle, 110), fontsize=11)


def _improves(value: float, current: float, mode: str) -> bool:
    return value > current if mode == "max" else value < current


def _cmap(name: str):
    from matplotlib import colormaps

    return colormaps[name]


def _figure(width: float = 8.0, height: float = 5.0, ncols: int = 1, rows: int = 1,
            height_ratios=None):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, ncols, squeeze=False,
                        gridspec_kw={"height_ratios": height_ratios} if height_ratios else None)
    axes = list(axes[:, 0] if rows > 1 else axes[0])
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, axes


def _save(fig, path: str) -> str:
    fig.savefig(path, dpi=DPI)
    return path


def pareto_front(search: Search, path: str) -> Optional[str]:
    """Accuracy and complexity (``search.objectives``): every successful trial's second
    objective (log axis) against its metric, the Pareto front joined as a step line, the model
    chosen for retraining marked and labelled. Drawn from the ``pareto`` record of
    ``study.json``; None when the search has none."""
    study = search.study.get("pareto") or {}
    pts = study.get("points") or []
    if not pts:
        return None
    from ..search.pareto import SECOND_OBJECTIVES

    metric, second = (study.get("objectives") or [search.metric, "second objective"])[:2]
    unit = SECOND_OBJECTIVES.get(second, second)
    fig, (ax,) = _figure()
    full = [p for p in pts if not p.get("pruned")]
    pruned = [p for p in pts if p.get("pruned")]
    ax.scatter([p["second"] for p in full], [p["metric"] for p in full], s=32, color="C0",
               alpha=0.75, zorder=3, label="trial")
    if pruned:
        ax.scatter([p["second"] for p in pruned], [p["metric"] for p in pruned], s=32,
                   facecolor="none", edgecolor="0.5", zorder=3, label="pruned trial")
    front = study.get("front") or []
    if front:
        ax.step([p["second"] for p in front], [p["metric"] for p in front], where="post",
                color="C1", lw=2, zorder=2)
        ax.scatter([p["second"] for p in front], [p["metric"] for p in front], s=70,
                   color="C1", edgecolor="black", linewidth=0.6, zorder=4,
                   label=f"Pareto front ({len(front)} trials)")
    top = study.get("most_accurate")
    tolerance = study.get("tolerance")
    if top and tolerance is not None:
        edge = top["metric"] - tolerance if search.mode == "max" else top["metric"] + tolerance
        ax.axhline(edge, color="0.45", lw=1, ls="--", zorder=1,
                   label=f"tolerance: {tolerance:g} from the best {metric}")
    chosen = study.get("chosen")
    if chosen:
        ax.scatter([chosen["second"]], [chosen["metric"]], marker="*", s=320,
                   color=BEST_COLOR, edgecolor="black", linewidth=0.8, zorder=5,
                   label=f"chosen for retraining: trial {chosen['trial']}")
        seconds = [p["second"] for p in pts]
        right = chosen["second"] >= (min(seconds) * max(seconds)) ** 0.5 if min(seconds) > 0 \
            else chosen["second"] >= (min(seconds) + max(seconds)) / 2
        amount = (f"{chosen['second']:,.0f}" if second == "params"
                  else f"{chosen['second']:.4g}")
        ax.annotate(f"chosen: trial {chosen['trial']}\n{amount} {unit}, "
                    f"{metric} {chosen['metric']:.4g}", (chosen["second"], chosen["metric"]),
                    xytext=(-14 if right else 14, -30), textcoords="offset points",
                    ha="right" if right else "left", fontsize=8.5,
                    bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "0.7", "alpha": 0.9},
                    arrowprops={"arrowstyle": "-", "color": "0.4"}, zorder=6)
    if len(pts) <= ANNOTATE_UP_TO:  # trials on the same spot share one label: "1, 4"
        spots: dict[tuple[float, float], list[str]] = {}
        for p in pts:
            spots.setdefault((p["second"], p["metric"]), []).append(str(p["trial"]))
        for xy, numbers in spots.items():
            ax.annotate(", ".join(numbers), xy, xytext=(5, 4), textcoords="offset points",
                        fontsize=8, color="0.35")
    if min(p["second"] for p in pts) > 0:
        ax.set_xscale("log")
    ax.margins(x=0.1, y=0.15)
    ax.set_xlabel(f"{second}: {unit} (lower is better" +
                  (", log scale)" if ax.get_xscale() == "log" else ")"))
    ax.set_ylabel(f"{metric} ({better(search.mode)})")
    ax.set_title(f"{metric} vs {second}: {len(pts)} trials, Pareto front in orange")
    fig.legend(loc="outside lower center", ncols=2, frameon=False)
    return _save(fig, path)
