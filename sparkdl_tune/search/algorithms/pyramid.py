"""Pyramid growth of a dense network (``search.algorithm: pyramid``).

The first hidden layer grows through ``start_units``, twice that, four times, ... up to the
input width, while the validation metric improves by more than ``min_delta`` (absolute) on the
layer's best size so far; the first size that does not improve ends the layer (a failed size
counts as no improvement, once one size succeeded). Then a layer narrower than the one before
is added and grown the same way, from ``start_units`` up to half the previous width. The new
layer is kept when its best size improves on the network without it by more than
``min_delta``; otherwise the search ends with the network before it. It also ends when the
last layer is no wider than the output (the classes, or 1 for regression), or at
``max_layers``.

Decisions are taken in size order, so they do not depend on how many trials run at once: with
``n`` slots a step trains the next ``n`` sizes of the layer side by side, and a size past the
point where growth stopped is shown but never decides anything. The sizes are the options of
one ``model.units`` choice that lists every network the growth can reach (powers of two
below the cap, each layer narrower than the one before), so the trials are ordinary points of
the search space: recorded, resumed and reported like any other.
"""

from __future__ import annotations

from typing import Any, Optional

from ...errors import ConfigError
from ..dimensions import Fixed
from .staged import PENDING, Outcome, Plan, Result, Step

UNITS = "model.units"
MAX_WIDTH = 4096  # widths above this are not tried (the option list doubles per width)


def widths(start: int, cap: int) -> list[int]:
    """``start, 2*start, 4*start, ...`` up to ``min(cap, MAX_WIDTH)``."""
    out, w = [], start
    while w <= min(cap, MAX_WIDTH):
        out.append(w)
        w *= 2
    return out


def networks(sizes: list[int], output_size: int, max_layers: Optional[int]) -> list[list[int]]:
    """Every network the growth can reach: strictly narrowing layers whose widths come from
    ``sizes``, where only the last layer may be no wider than ``output_size``."""
    out: list[list[int]] = []

    def grow(net: list[int]) -> None:
        out.append(net)
        if (max_layers and len(net) >= max_layers) or net[-1] <= output_size:
            return
        for w in sizes:
            if w < net[-1]:
                grow(net + [w])

    for w in sizes:
        grow([w])
    return out


def space_entries(space: Any, input_dim: int, output_size: int, settings: Any) -> dict:
    """The entries of the pyramid's search space: the user's fixed values, and ``model.units``
    as a choice of every reachable network."""
    entries: dict[str, Any] = {}
    if space is not None:
        for d in space.dimensions:
            if d.name == UNITS:
                raise ConfigError(f"{space.source}: pyramid grows {UNITS} itself; remove it from "
                                  "the search space")
            if not isinstance(d.spec, Fixed):
                raise ConfigError(f"{space.source}: pyramid varies only {UNITS}, but '{d.name}' "
                                  f"is a {d.kind} dimension; make it a fixed value, or tune it "
                                  "with sweep or tpe first")
            entries[d.name] = d.spec
    sizes = widths(settings.start_units, input_dim)
    if not sizes:
        raise ConfigError(f"search.pyramid.start_units is {settings.start_units}, wider than the "
                          f"input ({input_dim} features); lower it, e.g. 2")
    entries[UNITS] = {"choice": networks(sizes, output_size, settings.max_layers)}
    return entries


class Pyramid:
    """See the module docstring. ``space`` is the pyramid's own space (from
    :func:`space_entries`)."""

    name = "pyramid"

    def __init__(self, space: Any, input_dim: int, output_size: int, min_delta: float,
                 start_units: int = 2, max_layers: Optional[int] = None):
        units = next((d for d in space.dimensions if d.name == UNITS), None)
        if units is None:
            raise ConfigError(f"pyramid needs the {UNITS} choice of pyramid.space_entries")
        self.label = units.label
        self.index = {tuple(net): i for i, net in enumerate(units.spec.values)}
        self.sizes = widths(start_units, input_dim)
        self.output_size, self.min_delta, self.max_layers = output_size, min_delta, max_layers

    def planned(self) -> Optional[int]:
        return None

    def vals(self, net: list[int]) -> dict[str, Any]:
        return {self.label: self.index[tuple(net)]}

    def walk(self, result: Result, width: int = 1) -> Plan:
        net: list[int] = []
        kept: Optional[Outcome] = None
        steps: list[Step] = []
        while True:
            if self.max_layers and len(net) >= self.max_layers:
                return self._done(steps, net, f"{len(net)} layers: search.pyramid.max_layers")
            if net and net[-1] <= self.output_size:
                return self._done(steps, net, f"the last layer ({net[-1]} units) is no wider "
                                              f"than the output ({self.output_size})")
            sizes = [w for w in self.sizes if not net or w < net[-1]]
            if not sizes:
                return self._done(steps, net, "no narrower width is left to add")
            candidates = [self.vals(net + [w]) for w in sizes]
            step = Step(f"layer {len(net) + 1}", [], [])
            steps.append(step)
            best: Optional[int] = None
            for j, (w, vals) in enumerate(zip(sizes, candidates)):
                o = result(vals)
                step.candidates.append(vals)
                step.labels.append(w)
                step.outcomes.append(o)
                if o is None or o is PENDING:
                    return Plan(steps, todo=candidates[j:j + max(1, width)])
                if best is None:
                    best = j if o.loss is not None else None
                elif o.loss is not None and self._improves(o, step.outcomes[best]):
                    best = j
                else:
                    break  # growth of this layer ends at its first size that does not help
            self._show_extra(step, sizes, candidates, result)
            if best is None:
                step.note = "every size failed"
                return self._done(steps, net, f"layer {len(net) + 1}: every size failed")
            step.chosen = best
            o = step.outcomes[best]
            if kept is not None and not self._improves(o, kept):
                step.note = (f"{sizes[best]} units did not improve on the network without this "
                             f"layer by more than {self.min_delta}: not added")
                return self._done(steps, net, f"layer {len(net) + 1} did not help")
            net, kept = net + [sizes[best]], o

    def _improves(self, o: Outcome, than: Outcome) -> bool:
        return o.loss is not None and than.loss is not None and \
            than.loss - o.loss > self.min_delta

    def _done(self, steps: list[Step], net: list[int], why: str) -> Plan:
        return Plan(steps, todo=[], done=True, result=self.vals(net) if net else None,
                    note=f"chosen network {net or 'none'}: stopped because {why}")

    @staticmethod
    def _show_extra(step: Step, sizes, candidates, result: Result) -> None:
        """Sizes that ran side by side past the end of growth: shown, never deciding."""
        for w, vals in list(zip(sizes, candidates))[len(step.labels):]:
            o = result(vals)
            if o is not None and o is not PENDING:
                step.candidates.append(vals)
                step.labels.append(w)
                step.outcomes.append(o)
