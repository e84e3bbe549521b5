"""Accuracy and complexity together: the Pareto front of a search and the model it retrains.

``search.objectives: [val_accuracy, params]`` names the search metric and a second objective,
always minimised: ``params`` (the Keras model's parameter count), ``epoch_seconds`` (mean
training seconds per epoch) or ``latency_ms`` (prediction latency per row on rank 0). Every
trial records all three (see :mod:`sparkdl_tune.executor.worker`), so the front can be drawn
for any of them; the configured one decides:

* **what the algorithm learns from** — ``tpe``, ``anneal`` and ``random`` minimise the
  scalarised loss ``primary_loss + complexity_weight * log10(second)`` (one decade of
  parameters costs ``complexity_weight`` of the metric); ``genetic`` ranks its parents by
  non-dominated front and crowding distance (NSGA-II) from the pair ``(primary_loss, second)``
  each trial's result carries as ``objectives``, and so does Optuna's ``nsga2``
  (``search.engine: optuna``; it needs ``search.objectives``);
* **the model retrained**: among the successful trials that trained their full epochs, those
  whose metric is within ``tolerance`` (absolute) of the best; of those the one with the
  fewest of the second objective (ties: the better metric, then the earlier trial).

Pure Python, no Spark, TensorFlow or MLflow: plain numbers in, plain data out. A trial here is
anything with ``number``, ``ok``, ``score``, ``pruned_epoch`` and ``extra`` (a
:class:`~sparkdl_tune.spec.trial.TrialRecord`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import ConfigError
from ..spec.trial import MEASURES

SECOND_OBJECTIVES = MEASURES  # name -> unit
SCALARISED = ("tpe", "anneal", "random", "cmaes", "gp")  # learn from the scalarised loss
FRONTS = ("genetic", "nsga2")  # rank by non-dominated front and crowding distance
FLOOR = 1e-12  # log10 of a zero (a model without parameters, a too fast clock)
_DESIGNS = ("sweep", "pyramid")  # designs that pick their winner by the metric alone


def second_objective(search, metric: str) -> Optional[str]:
    """The second objective of ``search.objectives`` (None when it is empty), checked against
    the search ``metric``; a ConfigError names what is wrong before any training."""
    names = tuple(search.objectives or ())
    example = f"[{metric}, params]"
    if not names and search.algorithm == "nsga2":
        raise ConfigError(f"search.algorithm nsga2 searches two objectives but "
                          f"search.objectives is empty; set search.objectives={example} (or "
                          "epoch_seconds / latency_ms), or use tpe for one objective")
    if not names:
        return None
    if len(names) != 2:
        raise ConfigError(f"search.objectives has {len(names)} entries {list(names)}; give the "
                          f"search metric and one second objective, e.g. {example}")
    first, second = (str(n) for n in names)
    if first != metric:
        raise ConfigError(f"search.objectives starts with {first!r} but the search metric is "
                          f"{metric!r}; list the metric first, e.g. {example}")
    if second not in SECOND_OBJECTIVES:
        raise ConfigError(f"search.objectives: unknown second objective {second!r}; use one of "
                          f"{', '.join(SECOND_OBJECTIVES)}")
    if search.algorithm in _DESIGNS:
        raise ConfigError(f"search.objectives does not combine with algorithm "
                          f"{search.algorithm!r} (it picks its winner by {metric} alone); use "
                          "tpe, random, anneal, grid or genetic, or drop search.objectives")
    return second


def primary_loss(score: float, mode: str) -> float:
    """The metric as a loss to minimise."""
    return -score if mode == "max" else score


def scalarised(loss: float, second: float, weight: float) -> float:
    """``loss + weight * log10(second)`` (``second`` floored at 1e-12)."""
    return loss + weight * math.log10(max(float(second), FLOOR))


def trial_loss(search, score: float, mode: str,
               extra: dict[str, Any]) -> tuple[float, Optional[list[float]]]:
    """(hyperopt loss, ``[primary_loss, second]`` or None) of a trial that scored ``score``
    and measured ``extra`` (``params``, ``epoch_seconds``, ``latency_ms``)."""
    loss = primary_loss(score, mode)
    names = tuple(search.objectives or ())
    value = extra.get(names[1]) if len(names) == 2 else None
    if value is None or not math.isfinite(float(value)):
        return loss, None
    pair = [loss, float(value)]
    if search.algorithm in SCALARISED:
        return scalarised(loss, value, search.complexity_weight), pair
    return loss, pair


# -- non-dominated sorting (NSGA-II), all objectives minimised ---------------------------------
def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is no worse than ``b`` in every objective and better in one."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def nondominated_sort(points: Sequence[Sequence[float]]) -> list[list[int]]:
    """Indices of ``points`` by front: the first front is dominated by none, the second only by
    the first, and so on; each front in index order."""
    n = len(points)
    beaten_by = [0] * n
    beats: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j]):
                beats[i].append(j)
                beaten_by[j] += 1
            elif dominates(points[j], points[i]):
                beats[j].append(i)
                beaten_by[i] += 1
    fronts, current = [], [i for i in range(n) if beaten_by[i] == 0]
    while current:
        fronts.append(sorted(current))
        following = []
        for i in current:
            for j in beats[i]:
                beaten_by[j] -= 1
                if beaten_by[j] == 0:
                    following.append(j)
        current = following
    return fronts


def crowding(points: Sequence[Sequence[float]], front: Sequence[int]) -> dict[int, float]:
    """Crowding distance of each index of ``front``: the sum over objectives of the gap between
    its neighbours, normalised by the front's range; the extremes get infinity."""
    distance = {i: 0.0 for i in front}
    if len(front) <= 2:
        return {i: math.inf for i in front}
    for k in range(len(points[front[0]])):
        ordered = sorted(front, key=lambda i: (points[i][k], i))
        low, high = points[ordered[0]][k], points[ordered[-1]][k]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        if high == low:
            continue
        for before, i, after in zip(ordered, ordered[1:], ordered[2:]):
            distance[i] += (points[after][k] - points[before][k]) / (high - low)
    return distance


def ranks(points: Sequence[Sequence[float]]) -> list[tuple[int, float]]:
    """(front rank from 0, crowding distance) of every point, for an NSGA-II tournament: a lower
    rank wins, then a larger distance."""
    out: list[tuple[int, float]] = [(0, 0.0)] * len(points)
    for rank, front in enumerate(nondominated_sort(points)):
        for i, d in crowding(points, front).items():
            out[i] = (rank, d)
    return out


# -- the trials of a search --------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """One successful trial on the plane: its metric and its second objective."""

    number: int
    metric: float
    second: float
    pruned: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"trial": self.number + 1, "metric": self.metric, "second": self.second,
                **({"pruned": True} if self.pruned else {})}


def points(records: Iterable[Any], second: str) -> list[Point]:
    """Every successful trial that measured ``second``, in trial order."""
    out = []
    for r in records:
        value = (r.extra or {}).get(second)
        if not r.ok or r.score is None or value is None:
            continue
        if math.isfinite(float(r.score)) and math.isfinite(float(value)):
            out.append(Point(r.number, float(r.score), float(value), bool(r.pruned_epoch)))
    return sorted(out, key=lambda p: p.number)


def front(records: Iterable[Any], second: str, mode: str) -> list[Point]:
    """The non-dominated trials that trained their full epochs (pruned ones were judged on
    fewer), by increasing second objective."""
    pts = [p for p in points(records, second) if not p.pruned]
    objs = [(primary_loss(p.metric, mode), p.second) for p in pts]
    first = nondominated_sort(objs)[0] if pts else []
    return sorted((pts[i] for i in first), key=lambda p: (p.second, p.number))


@dataclass(frozen=True)
class Choice:
    """The trial retrained and why."""

    chosen: Point
    most_accurate: Point
    within: list[Point]  # the trials within tolerance of the best metric
    why: str
    reason: Optional[str] = None  # set when no trial within tolerance is smaller


def choose(records: Iterable[Any], second: str, mode: str, tolerance: float,
           metric: str = "metric") -> Optional[Choice]:
    """The rule: among the successful trials that trained their full epochs (all successful ones
    when every one was pruned), those within ``tolerance`` (absolute) of the best metric; the
    fewest ``second`` of them, ties to the better metric and then the earlier trial. None when
    no trial measured ``second``."""
    pts = points(records, second)
    pts = [p for p in pts if not p.pruned] or pts
    if not pts:
        return None
    sign = -1 if mode == "max" else 1
    top = min(pts, key=lambda p: (sign * p.metric, p.number))
    within = [p for p in pts if sign * (p.metric - top.metric) <= tolerance + 1e-12]
    chosen = min(within, key=lambda p: (p.second, sign * p.metric, p.number))
    unit = SECOND_OBJECTIVES.get(second, second)
    why = (f"the fewest {unit} among the {len(within)} trial(s) whose {metric} is within "
           f"{tolerance:g} of the best ({_num(top.metric)}, trial {top.number + 1}); ties go "
           f"to the better {metric}, then the earlier trial")
    reason = None
    if chosen.number == top.number:
        others = [p for p in within if p.number != top.number]
        reason = (f"no other trial is within {tolerance:g} of the best {metric}" if not others
                  else f"no trial within {tolerance:g} of the best {metric} has fewer {unit} "
                       f"than trial {top.number + 1} ({_num(top.second)})")
    return Choice(chosen, top, within, why, reason)


def study(records: Iterable[Any], second: str, mode: str, tolerance: float, metric: str,
          weight: float, algorithm: str) -> dict[str, Any]:
    """The ``pareto`` entry of ``study.json`` and ``summary.json``."""
    records = list(records)
    choice = choose(records, second, mode, tolerance, metric)
    out: dict[str, Any] = {
        "objectives": [metric, second], "mode": mode, "tolerance": tolerance,
        "learned_from": (f"{metric} as a loss + {weight:g} x log10({second})"
                         if algorithm in SCALARISED else
                         "non-dominated fronts and crowding distance (NSGA-II)"
                         if algorithm in FRONTS else f"{metric} alone"),
        "points": [p.as_dict() for p in points(records, second)],
        "front": [p.as_dict() for p in front(records, second, mode)],
    }
    if choice is None:
        out["reason"] = f"no successful trial measured {second}: nothing to choose from"
        return out
    out.update({"chosen_trial": choice.chosen.number + 1, "chosen": choice.chosen.as_dict(),
                "most_accurate_trial": choice.most_accurate.number + 1,
                "most_accurate": choice.most_accurate.as_dict(),
                "within_tolerance": [p.number + 1 for p in choice.within],
                "rule": choice.why, "reason": choice.reason})
    return out


def for_retrain(search, monitor, best):
    """The trial to retrain: by the rule above when ``search.objectives`` names a second
    objective, else ``best``."""
    names = tuple(search.objectives or ())
    if len(names) != 2:
        return best
    choice = choose(monitor.records.values(), names[1], monitor.mode, search.tolerance,
                    monitor.metric)
    return best if choice is None else monitor.records[choice.chosen.number]


def study_of(search, monitor) -> dict[str, Any]:
    """``{"pareto": ...}`` for the tuner's study hook; ``{}`` without a second objective."""
    names = tuple(search.objectives or ())
    if len(names) != 2:
        return {}
    return {"pareto": study(monitor.records.values(), names[1], monitor.mode, search.tolerance,
                            monitor.metric, search.complexity_weight, search.algorithm)}


def _num(value: float) -> str:
    return f"{value:.6g}"
