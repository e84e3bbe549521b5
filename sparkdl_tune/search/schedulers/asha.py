"""ASHA: asynchronous successive halving, as Ray Tune's ``AsyncHyperBandScheduler`` does it.

Rungs sit at ``min_epochs * reduction_factor**k`` epochs (rounded up) that are below
``max_epochs``; with rf 3, min 2, max 20 they are 2, 6 and 18. When a trial reports at epoch
``e``, the highest rung ``m <= e`` it has no value at yet judges it: the cutoff is the
``(1 - 1/rf)`` percentile (linear interpolation, like ``np.nanpercentile``) of the scores
already recorded at that rung by other trials; the trial stops when its score is strictly below
the cutoff, i.e. it goes on only when it is in the top ``1/rf`` of the trials recorded there.
The first trial to reach a rung always goes on. Either way its score is recorded at the rung
(and never again): the table depends only on each trial's own curve, not on arrival order.
"""

from __future__ import annotations

from .base import Decision, Scheduler, fmt, percentile, rung_epochs


class Bracket:
    """One ASHA bracket: its rungs and, per rung, the score each trial recorded there."""

    def __init__(self, grace: float, max_epochs: int, reduction_factor: float):
        self.grace = grace
        self.rf = reduction_factor
        self.milestones = rung_epochs(grace, max_epochs, reduction_factor)
        self.recorded: dict[int, dict[str, float]] = {m: {} for m in self.milestones}

    def judge(self, trial: str, epoch: int, score: float):
        """``(stop, milestone, cutoff, n_others)`` for this report, or None (no rung due)."""
        for m in reversed(self.milestones):
            rec = self.recorded[m]
            if epoch < m or trial in rec:
                continue
            cutoff = percentile(rec.values(), (1 - 1 / self.rf) * 100) if rec else None
            n_others = len(rec)
            rec[trial] = score
            return cutoff is not None and score < cutoff, m, cutoff, n_others
        return None


def decide(scheduler: Scheduler, bracket: Bracket, trial: str, epoch: int,
           value: float) -> Decision:
    """Judge one finite report in ``bracket``; the :class:`Decision` with its reason line."""
    judged = bracket.judge(trial, epoch, scheduler._score(value))
    if judged is None:
        return Decision(stop=False)
    stop, milestone, cutoff, n_others = judged
    if not stop:
        return Decision(stop=False, rung=milestone)
    side = "below" if scheduler.mode == "max" else "above"
    reason = (f"{scheduler.metric} {fmt(value)} at epoch {epoch} is {side} the cutoff "
              f"{fmt(scheduler._raw(cutoff))} of rung {milestone} (top 1/{bracket.rf:g} of "
              f"{n_others} trial{'s' if n_others != 1 else ''})")
    return Decision(stop=True, reason=reason, rung=milestone)


class ASHAScheduler(Scheduler):
    """ASHA with one bracket of grace period ``min_epochs`` (see the module's docstring)."""

    name = "asha"
    stops_on_nan = True

    def __init__(self, mode: str, metric: str = "objective", *, min_epochs: int = 1,
                 max_epochs: int, reduction_factor: float = 3.0):
        super().__init__(mode, metric)
        if min_epochs < 1 or reduction_factor <= 1:
            raise ValueError(f"min_epochs {min_epochs} (1+), reduction_factor "
                             f"{reduction_factor} (> 1)")
        self.min_epochs = min_epochs
        self.max_epochs = max_epochs
        self.reduction_factor = reduction_factor
        self.bracket = Bracket(min_epochs, max_epochs, reduction_factor)

    def _judge(self, trial: str, epoch: int, value: float) -> Decision:
        return decide(self, self.bracket, trial, epoch, value)

    def milestones(self, trial: str) -> list[int]:
        return list(self.bracket.milestones)

    def snapshot(self) -> dict:
        """``{milestone: {trial: raw value recorded there}}``."""
        with self._lock:
            return {m: {t: self._raw(s) for t, s in rec.items()}
                    for m, rec in self.bracket.recorded.items()}
