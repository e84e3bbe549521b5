"""Early-stopping schedulers of a search: from per-epoch reports, which running trials to stop.

Pure Python (no TensorFlow, Spark, MLflow or Hyperopt): the driver calls
:meth:`Scheduler.report` after every epoch of every trial and stops the trial when the
:class:`Decision` says so; the trial is then recorded as *pruned*.

``fifo`` (the base :class:`~sparkdl_tune.search.schedulers.base.Scheduler`) never stops a
trial. ``asha`` (:class:`~sparkdl_tune.search.schedulers.asha.ASHAScheduler`) and ``hyperband``
(:class:`~sparkdl_tune.search.schedulers.hyperband.HyperBandScheduler`) stop a trial at a rung when
it is not in the top ``1/reduction_factor`` of the trials recorded there, like Ray Tune's
``AsyncHyperBandScheduler``; ``median``
(:class:`~sparkdl_tune.search.schedulers.median.MedianScheduler`) stops a trial whose best value so
far is worse than the median of the others', like Optuna's ``MedianPruner``. Every scheduler but
fifo stops a trial that reports a NaN or infinite value.

Values are reported raw, in the search's ``mode`` (``min`` or ``max``); internally a *score* is
the value (max) or its negation (min), so higher is always better. A report names the number
of epochs finished (1-based). Reports are thread-safe, and a repeated report of the same
(trial, epoch) is answered with the first answer and counted once. The tables a scheduler keeps
depend only on each trial's own curve (the value at the epochs it reported), except
hyperband's bracket assignment, which follows the order trials are first seen: replaying the
recorded curves of a crashed search in trial order rebuilds the same tables.
"""

from __future__ import annotations

from .asha import ASHAScheduler
from .base import GO_ON, Decision, Scheduler, fmt, percentile, rung_epochs
from .hyperband import HyperBandScheduler
from .median import MedianScheduler

__all__ = [
    "Decision", "Scheduler", "make_scheduler", "SCHEDULERS",
    "ASHAScheduler", "HyperBandScheduler", "MedianScheduler",
    "GO_ON", "fmt", "percentile", "rung_epochs",
]

SCHEDULERS = ("fifo", "asha", "hyperband", "median")


def make_scheduler(name: str, pruning, mode: str, max_epochs: int,
                   metric: str = "objective") -> Scheduler:
    """The scheduler ``name`` (fifo|asha|hyperband|median) for a search.

    ``pruning`` is a :class:`~sparkdl_tune.config.schema.PruningSettings` (None: its defaults);
    ``max_epochs`` is what an unstopped trial trains (when None, ``pruning.max_epochs``).
    """
    min_epochs = int(getattr(pruning, "min_epochs", 1))
    rf = float(getattr(pruning, "reduction_factor", 3.0))
    min_trials = int(getattr(pruning, "min_trials", 3))
    if max_epochs is None:
        max_epochs = getattr(pruning, "max_epochs", None)
    if name == "fifo":
        return Scheduler(mode, metric)
    if max_epochs is None or int(max_epochs) < 1:
        raise ValueError(f"max_epochs is {max_epochs}; a scheduler needs the epochs of a trial")
    max_epochs = int(max_epochs)
    if name == "asha":
        return ASHAScheduler(mode, metric, min_epochs=min_epochs, max_epochs=max_epochs,
                             reduction_factor=rf)
    if name == "hyperband":
        return HyperBandScheduler(mode, metric, min_epochs=min_epochs, max_epochs=max_epochs,
                                  reduction_factor=rf)
    if name == "median":
        return MedianScheduler(mode, metric, min_epochs=min_epochs, min_trials=min_trials)
    raise ValueError(f"scheduler is {name!r}; use one of {', '.join(SCHEDULERS)}")
