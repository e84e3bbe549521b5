"""Asynchronous Hyperband: several ASHA brackets, each new trial assigned to one of them.

Bracket ``s`` (s = 0 .. S) is an ASHA bracket (see :mod:`~sparkdl_tune.search.schedulers.asha`) with
grace period ``min_epochs * rf**s`` and rungs ``min_epochs * rf**(s + k)`` below
``max_epochs``; ``S`` is the last ``s`` whose grace period is still below ``max_epochs``
(min 1, max 27, rf 3: graces 1, 3, 9; rungs 1/3/9, 3/9 and 9). A trial is judged only
against the trials of its own bracket. A trial joins a bracket the first time its id is seen
(by :meth:`report`, :meth:`milestones` or :meth:`rung_reached`), deterministically by
arrival order: bracket ``s`` has Hyperband's weight ``n_s = ceil((S+1)/(S+1-s) * rf**(S-s))``
(more trials to the aggressive brackets; 9, 5, 3 above) and the ``i``-th new trial goes to the
bracket that a smooth weighted round-robin picks (every bracket's credit grows by its weight,
the one with most credit, the lowest ``s`` on a tie, takes the trial and pays the sum of the
weights): any run of ``sum(n_s)`` arrivals fills each bracket ``n_s`` times, interleaved
(0, 1, 0, 2, 0, 1, 0, ... above). A driver that calls :meth:`milestones` for each trial as it
starts, in trial order, and replays a resumed search's curves in trial order, gets the same
brackets and rung tables again.
"""

from __future__ import annotations

import math

from .asha import ASHAScheduler, Bracket, decide
from .base import Decision


def bracket_weights(n: int, rf: float) -> list[int]:
    """Hyperband's ``n_s`` for brackets s = 0 .. n-1 (s = 0: the most aggressive)."""
    top = n - 1
    return [math.ceil(n / (n - s) * rf ** (top - s) - 1e-9) for s in range(n)]


class HyperBandScheduler(ASHAScheduler):
    """Asynchronous Hyperband (see the module's docstring): ASHA's settings, several
    brackets."""

    name = "hyperband"

    def __init__(self, mode: str, metric: str = "objective", *, min_epochs: int = 1,
                 max_epochs: int, reduction_factor: float = 3.0):
        super().__init__(mode, metric, min_epochs=min_epochs, max_epochs=max_epochs,
                         reduction_factor=reduction_factor)
        self.brackets: list[Bracket] = []
        s = 0
        while True:
            bracket = Bracket(min_epochs * reduction_factor ** s, max_epochs, reduction_factor)
            if not bracket.milestones:
                break
            if not self.brackets or bracket.milestones != self.brackets[-1].milestones:
                self.brackets.append(bracket)
            s += 1
        if not self.brackets:  # min_epochs >= max_epochs: one bracket without rungs
            self.brackets.append(Bracket(min_epochs, max_epochs, reduction_factor))
        self.weights = bracket_weights(len(self.brackets), reduction_factor)
        self._credit = [0] * len(self.brackets)
        self._bracket_of: dict[str, int] = {}

    @property
    def grace_periods(self) -> list[int]:
        """The first rung of each bracket (epochs), bracket 0 first."""
        return [b.milestones[0] if b.milestones else self.min_epochs for b in self.brackets]

    def bracket_of(self, trial: str) -> int:
        """The bracket index of ``trial``, assigning it now when it is new."""
        with self._lock:
            index = self._bracket_of.get(trial)
            if index is None:
                total = sum(self.weights)
                for s, w in enumerate(self.weights):
                    self._credit[s] += w
                index = max(range(len(self._credit)), key=lambda s: (self._credit[s], -s))
                self._credit[index] -= total
                self._bracket_of[trial] = index
            return index

    def _judge(self, trial: str, epoch: int, value: float) -> Decision:
        return decide(self, self.brackets[self.bracket_of(trial)], trial, epoch, value)

    def report(self, trial: str, epoch: int, value: float) -> Decision:
        if int(epoch) >= 1:  # a NaN first report still takes its place in the order
            self.bracket_of(trial)
        return super().report(trial, epoch, value)

    def milestones(self, trial: str) -> list[int]:
        return list(self.brackets[self.bracket_of(trial)].milestones)

    def snapshot(self) -> dict:
        """``{"brackets": {trial: s}, "rungs": [{milestone: {trial: raw value}} per s]}``."""
        with self._lock:
            return {
                "brackets": dict(self._bracket_of),
                "rungs": [{m: {t: self._raw(v) for t, v in rec.items()}
                           for m, rec in b.recorded.items()} for b in self.brackets],
            }
