"""What every scheduler shares: the :class:`Decision` after a report, the base class (which is
the ``fifo`` scheduler) with its lock and repeated-report memory, and the small helpers the
rung schedulers use. See :mod:`sparkdl_tune.search.schedulers` for the whole picture.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Iterable, Optional


@dataclass(frozen=True)
class Decision:
    """What to do with a trial after one report.

    ``stop``: stop the trial now. ``reason``: one human line when it stops, ``""`` otherwise.
    ``rung``: the rung milestone (epochs) this report was judged at, if any (asha, hyperband).
    """

    stop: bool
    reason: str = ""
    rung: Optional[int] = None


GO_ON = Decision(stop=False)


class Scheduler:
    """The base class, and the ``fifo`` scheduler: it never stops a trial (not even on NaN).

    Subclasses implement :meth:`_judge` (called under the lock, once per new (trial, epoch),
    with a finite value) and, where they have rungs, :meth:`milestones`.
    """

    name = "fifo"
    stops_on_nan = False

    def __init__(self, mode: str, metric: str = "objective"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode is {mode!r}; use 'min' or 'max'")
        self.mode = mode
        self.metric = metric
        self._lock = threading.RLock()
        self._decisions: dict[tuple[str, int], Decision] = {}
        self._completed: set[str] = set()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mode={self.mode!r}, metric={self.metric!r})"

    # -- the API ------------------------------------------------------------------------------

    def report(self, trial: str, epoch: int, value: float) -> Decision:
        """Judge ``trial`` after ``epoch`` finished epochs (1-based) with ``value`` (raw).

        A repeated (trial, epoch) returns the first decision and changes nothing.
        """
        epoch = int(epoch)
        if epoch < 1:
            raise ValueError(f"epoch is {epoch}; report the number of finished epochs (1+)")
        value = math.nan if value is None else float(value)
        with self._lock:
            key = (trial, epoch)
            if key in self._decisions:
                return self._decisions[key]
            if not math.isfinite(value):
                if self.stops_on_nan:
                    what = "NaN" if math.isnan(value) else f"{value} (not finite)"
                    decision = Decision(True, f"{self.metric} is {what} at epoch {epoch}")
                else:
                    decision = GO_ON
            else:
                decision = self._judge(trial, epoch, value)
            self._decisions[key] = decision
            return decision

    def complete(self, trial: str) -> None:
        """``trial`` ended (finished, pruned or failed). Its recorded values stay counted."""
        with self._lock:
            self._completed.add(trial)

    def milestones(self, trial: str) -> list[int]:
        """The rung epochs that apply to ``trial``, ascending (none for fifo and median)."""
        return []

    def rung_reached(self, trial: str, epochs_run: int) -> Optional[int]:
        """The highest milestone of ``trial`` that is <= ``epochs_run``, or None."""
        reached = [m for m in self.milestones(trial) if m <= epochs_run]
        return reached[-1] if reached else None

    def snapshot(self) -> dict:
        """A copy of the scheduler's tables (raw values), for tests, logs and replay checks."""
        return {}

    # -- for subclasses -----------------------------------------------------------------------

    def _judge(self, trial: str, epoch: int, value: float) -> Decision:
        return GO_ON

    def _score(self, value: float) -> float:
        """Higher is better, whatever the mode."""
        return value if self.mode == "max" else -value

    def _raw(self, score: float) -> float:
        return score if self.mode == "max" else -score


# -- helpers shared by the schedulers ---------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float:
    """``numpy.percentile(values, q)`` with linear interpolation, on a non-empty sequence."""
    xs = sorted(values)
    if not xs:
        raise ValueError("percentile of no values")
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def rung_epochs(grace: float, max_epochs: int, rf: float) -> list[int]:
    """Rungs ``grace * rf**k`` (k = 0, 1, ...) that are below ``max_epochs``, as epochs.

    A fractional milestone is judged at the first whole epoch that reaches it (rounded up);
    milestones that round to the same epoch count once.
    """
    out: list[int] = []
    k = 0
    while True:
        epoch = math.ceil(grace * rf ** k - 1e-9)
        if epoch >= max_epochs:
            return out
        if not out or epoch > out[-1]:
            out.append(epoch)
        k += 1


def fmt(x: float) -> str:
    """A metric value for a reason line: 4 decimals when that reads well, else 4 digits."""
    return f"{x:.4f}" if 1e-3 <= abs(x) < 1e5 or x == 0 else f"{x:.4g}"
