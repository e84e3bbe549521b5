"""Designs that run in steps: a step's candidates run side by side, and the next step is
planned from their results (the one-at-a-time sweep, pyramid growth).

A design is a pure function of what has been tried so far. :meth:`Design.walk` replays the
design from its first step, asking ``result(vals)`` for each candidate's :class:`Outcome`
(``None``: not tried yet, :data:`PENDING`: queued or running), and returns a :class:`Plan`:
the steps so far with the decisions already made, and the candidates that must run now. The
same walk serves three callers:

- :class:`Staged`, a :class:`~sparkdl_tune.search.engines.protocol.Proposer`, proposes the
  candidates of the current step that were not tried yet; when all of them are queued or
  running it waits for them to end before planning the next step (parallel trials run in other
  threads; trials run one at a time on the driver have always ended by the next call);
- a resumed search: its recorded trials answer ``result`` again, so the design carries on where
  it stopped, with the same decisions;
- the report: :func:`describe` walks the finished trials to the tables of each step.

Nothing is kept between calls, so the proposer pickles small like the others.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from ..engines.protocol import OK

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Outcome:
    """How a tried candidate ended: ``loss`` (lower is better) or ``None`` when it failed."""

    loss: Optional[float]
    pruned: bool = False
    trial: Optional[int] = None  # 0-based trial number
    score: Optional[float] = None  # the metric as logged (for tables)
    seconds: float = 0.0
    status: str = "finished"


PENDING = Outcome(None, status="running")  # queued or running: no result yet

Result = Callable[[Mapping[str, Any]], Optional[Outcome]]


@dataclass
class Step:
    """One step of a design: what it tried and what it decided.

    ``labels`` name each candidate for a table (a dimension's value, a layer's width);
    ``chosen`` is the index of the candidate kept, once the step is decided (``None`` while it
    runs, or when no candidate succeeded).
    """

    name: str
    candidates: list[dict[str, Any]]
    labels: list[Any]
    chosen: Optional[int] = None
    note: str = ""
    outcomes: list[Optional[Outcome]] = field(default_factory=list)


@dataclass
class Plan:
    steps: list[Step]
    todo: list[dict[str, Any]]  # candidates that must run now (some may be running already)
    done: bool = False
    result: Optional[dict[str, Any]] = None  # the design's answer (vals), once done
    note: str = ""


class Design(Protocol):
    name: str

    def walk(self, result: Result, width: int = 1) -> Plan:
        """Replay the design; ``width``: how many trials may run side by side."""

    def planned(self) -> Optional[int]:
        """Trials the design runs at most, when known in advance."""


def winner(outcomes: Sequence[Optional[Outcome]]) -> Optional[int]:
    """Index of the best finished candidate: lowest loss among those that trained their full
    epochs (a pruned one only when none did); ties go to the earlier candidate."""
    ok = [(o.loss, i) for i, o in enumerate(outcomes)
          if o is not None and o.loss is not None and math.isfinite(o.loss) and not o.pruned]
    ok = ok or [(o.loss, i) for i, o in enumerate(outcomes)
                if o is not None and o.loss is not None and math.isfinite(o.loss)]
    return min(ok)[1] if ok else None


def unresolved(outcomes: Sequence[Optional[Outcome]]) -> bool:
    return any(o is None or o is PENDING for o in outcomes)


class Staged:
    """A staged ``design`` as a :class:`~sparkdl_tune.search.engines.protocol.Proposer` (see the
    module docstring); ``width``: how many trials run side by side (the design's steps may
    plan for it)."""

    def __init__(self, design: Design, space: Any, width: int = 1,
                 poll: float = POLL_SECONDS):
        self.design, self.space = design, space
        self.width, self.poll = max(1, int(width or 1)), poll

    @property
    def name(self) -> str:
        return self.design.name

    def propose(self, n: int, store: Any, seed: int) -> list[dict[str, Any]]:
        space = self.space
        while True:
            results = outcomes_of_attempts(space, store.attempts())
            plan = self.design.walk(lambda vals: results.get(_key(space, vals)),
                                    width=self.width)
            if plan.done:
                return []
            todo, seen = [], set()
            for vals in plan.todo:
                key = _key(space, vals)
                if key not in results and key not in seen:
                    seen.add(key)
                    todo.append(vals)
            if todo:
                return todo[:n]
            if store.stopping():  # the search's timeout or stop rule: plan nothing more
                return []
            time.sleep(self.poll)  # the step's last trials are running: its decision needs them


def outcomes_of_attempts(space: Any, attempts: Sequence[Any]) -> dict[tuple, Outcome]:
    """The store's attempts as ``vals_key -> Outcome`` (the latest attempt of a point wins)."""
    out: dict[tuple, Outcome] = {}
    for attempt in sorted(attempts, key=lambda a: a.number):
        try:
            key = space.vals_key(attempt.point())
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if not attempt.ended:
            out[key] = PENDING
        elif attempt.state == OK:
            result = attempt.result or {}
            out[key] = Outcome(attempt.loss, pruned=bool(result.get("pruned")),
                               trial=attempt.number)
        else:
            out[key] = Outcome(None, trial=attempt.number, status="failed")
    return out


def outcomes_of_records(space: Any, records: Sequence[Any]) -> dict[tuple, Outcome]:
    """The monitor's finished trials (:class:`~sparkdl_tune.spec.trial.TrialRecord`) as
    ``vals_key -> Outcome``; cancelled trials count as not tried."""
    out: dict[tuple, Outcome] = {}
    for r in sorted(records, key=lambda r: r.number):
        if r.cancelled:
            continue
        try:
            key = space.vals_key({k: v[0] for k, v in r.vals.items() if v})
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        out[key] = Outcome(r.loss if r.ok else None, pruned=bool(r.pruned_epoch),
                           trial=r.number, score=r.score, seconds=r.duration, status=r.status)
    return out


def describe(design: Design, space: Any, records: Sequence[Any],
             label_name: str = "value") -> dict[str, Any]:
    """The design's steps as tables (for ``study.json``, the summary and the report)."""
    results = outcomes_of_records(space, records)
    plan = design.walk(lambda vals: results.get(_key(space, vals)))
    steps = []
    for step in plan.steps:
        rows = []
        for label, o in zip(step.labels, step.outcomes):
            rows.append({label_name: _plain(label),
                         "trial": None if o is None or o.trial is None else o.trial + 1,
                         "score": None if o is None else o.score,
                         "seconds": None if o is None else round(o.seconds, 1),
                         "status": "not run" if o is None else o.status})
        steps.append({"name": step.name, "rows": rows,
                      "chosen": None if step.chosen is None else _plain(step.labels[step.chosen]),
                      "note": step.note})
    return {"steps": steps, "complete": plan.done, "note": plan.note,
            "result": None if plan.result is None else space.decode(plan.result)}


def _key(space: Any, vals: Mapping[str, Any]) -> tuple:
    return space.vals_key(vals)


def _plain(value: Any) -> Any:
    from ..space import to_python

    return to_python(value)
