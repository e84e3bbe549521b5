"""One hyper-parameter at a time (``search.algorithm: sweep``).

The dimensions are taken in the order the space gives them. Each step tries every value of
one dimension, side by side, with every other dimension at its best value so far (at first:
the configured value, when the dimension can take it); the winner is kept and the next
dimension is swept. The trials train ``search.trial_epochs`` (the cheap screening budget); the
final retrain confirms the winner at ``search.final_epochs``. The winner's point is shared by
the next step, so it is never trained twice.

Values tried: every option of a choice, every value of an integer or quantised range, and
``search.sweep.points`` values evenly spaced over a continuous range (in log space for
loguniform), ends included. A step whose candidates all fail keeps the dimension's current
value. Conditional (nested) choices are refused: their sub-dimensions have no single current
value to hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Optional

from ...errors import ConfigError
from ..dimensions import Choice, Fixed, Uniform
from .staged import Plan, Result, Step, unresolved, winner


class Sweep:
    """See the module docstring. ``start`` holds the configured value of each dimension (dotted
    key -> value; missing or impossible values start at the first option, or the middle of a
    range)."""

    name = "sweep"

    def __init__(self, space: Any, start: Mapping[str, Any] = {}, points: int = 5):
        for d in space.dimensions:
            if d.children:
                raise ConfigError(f"{space.source}: sweep takes one dimension at a time, but "
                                  f"'{d.name}' has conditional sub-dimensions; flatten the "
                                  "space, or use tpe, random or genetic")
        self.dims = [(d, values(d.spec, points)) for d in space.dimensions
                     if not isinstance(d.spec, Fixed)]
        if not self.dims:
            raise ConfigError(f"{space.source}: sweep needs at least one dimension that varies")
        self.start = {d.label: initial(d.spec, vs, start.get(d.name)) for d, vs in self.dims}

    def planned(self) -> int:
        """Trials of a full sweep: every value of every dimension, the carried winner once."""
        return sum(len(vs) for _, vs in self.dims) - (len(self.dims) - 1)

    def walk(self, result: Result, width: int = 1) -> Plan:
        """(``width``: a sweep step runs all its values side by side.)"""
        current = dict(self.start)
        steps: list[Step] = []
        for d, vs in self.dims:
            candidates = [{**current, d.label: v} for v in vs]
            step = Step(d.name, candidates, [d.spec.real(v) for v in vs])
            step.outcomes = [result(c) for c in candidates]
            steps.append(step)
            if unresolved(step.outcomes):
                return Plan(steps, todo=candidates)
            best = winner(step.outcomes)
            if best is None:
                step.note = (f"every value failed; {d.name} stays "
                             f"{d.spec.real(current[d.label])!r}")
                continue
            step.chosen = best
            current = candidates[best]
        return Plan(steps, todo=[], done=True, result=current)


def values(spec: Any, points: int) -> list[Any]:
    """The vals values a sweep tries for one dimension, in order."""
    if isinstance(spec, Uniform):  # LogUniform too: evenly spaced in its warped space
        lo, hi = spec.warp(spec.low), spec.warp(spec.high)
        return _unique([spec.real(float(f"{spec.unwarp(lo + (hi - lo) * i / (points - 1)):.6g}"))
                        for i in range(points)])
    return list(spec.grid())


def initial(spec: Any, vs: list[Any], configured: Optional[Any]) -> Any:
    """The vals value a dimension starts at: the configured value when the dimension can take
    it, else the first option of a choice or the middle value of a range."""
    if configured is not None:
        try:
            v = spec.to_val(configured)
            if _same(spec.real(v), configured):
                return v
        except (TypeError, ValueError):
            pass
    return vs[0] if isinstance(spec, Choice) else vs[len(vs) // 2]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    from .. import dimensions

    return dimensions._lists(a) == dimensions._lists(b)


def _unique(xs: list[Any]) -> list[Any]:
    out: list[Any] = []
    for x in xs:
        if x not in out:
            out.append(x)
    return out
