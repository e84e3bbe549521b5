"""The median stopping rule, as Optuna's ``MedianPruner`` (and Ray Tune's) apply it.

At every epoch ``t >= min_epochs`` a trial's best value so far (over the epochs it reported up
to ``t``) is compared with the median (``np.median``: the mean of the middle two for an even
count) of the best values so far, up to ``t``, of the *other* trials that reported epoch
``t`` themselves, whether they are still running, finished or were stopped; it stops when it
is strictly worse. Until at least ``min_trials`` other trials reported epoch ``t`` there is no
judgement at ``t``. Values of trials are kept per epoch, so the table depends only on each
trial's own curve, not on the order reports arrive in.
"""

from __future__ import annotations

from .base import Decision, Scheduler, fmt, percentile


class MedianScheduler(Scheduler):
    """The median stopping rule (see the module's docstring)."""

    name = "median"
    stops_on_nan = True

    def __init__(self, mode: str, metric: str = "objective", *, min_epochs: int = 1,
                 min_trials: int = 3):
        super().__init__(mode, metric)
        if min_epochs < 1 or min_trials < 1:
            raise ValueError(f"min_epochs {min_epochs} and min_trials {min_trials}: use 1+")
        self.min_epochs = min_epochs
        self.min_trials = min_trials
        self._curves: dict[str, dict[int, float]] = {}  # trial -> epoch -> score

    def _best(self, trial: str, epoch: int) -> float:
        return max(s for e, s in self._curves[trial].items() if e <= epoch)

    def _judge(self, trial: str, epoch: int, value: float) -> Decision:
        self._curves.setdefault(trial, {})[epoch] = self._score(value)
        if epoch < self.min_epochs:
            return Decision(stop=False)
        others = [self._best(t, epoch) for t, curve in self._curves.items()
                  if t != trial and epoch in curve]
        if len(others) < self.min_trials:
            return Decision(stop=False)
        median = percentile(others, 50)
        mine = self._best(trial, epoch)
        if mine >= median:
            return Decision(stop=False)
        reason = (f"{self.metric} best {fmt(self._raw(mine))} by epoch {epoch} is worse than "
                  f"the median {fmt(self._raw(median))} of {len(others)} other trials' best "
                  f"by epoch {epoch}")
        return Decision(stop=True, reason=reason)

    def snapshot(self) -> dict:
        """``{trial: {epoch: raw value}}``."""
        with self._lock:
            return {t: {e: self._raw(s) for e, s in sorted(c.items())}
                    for t, c in self._curves.items()}
