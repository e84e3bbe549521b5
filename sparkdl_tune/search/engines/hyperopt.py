"""hyperopt as a search engine: the one module that knows hyperopt and its trial documents.

The rest of the package speaks the plain records of :mod:`.protocol`; this module is the engine
seam's API (see :mod:`sparkdl_tune.search.engines`) for hyperopt:

- :data:`ALGORITHMS` and :func:`algorithm` give hyperopt's own algorithms (``tpe``, ``random``,
  ``anneal``);
- :func:`run` drives the search (``parallel``: one Spark task per trial with SparkTrials, or
  warm executors taking trial after trial with ``runner="executors"``, or driver threads
  launching multi-rank trials side by side with ``runner="driver"``; ``serial``: one at a
  time on the driver) with either one of those or a package
  :class:`~.protocol.Proposer` (grid, genetic, sweep, pyramid), which :func:`suggest_of` puts
  on hyperopt's suggest protocol (``algo(new_ids, domain, trials, seed)`` -> trial documents);
- the watcher, the early stop and the proposers see the live trial documents only through
  :class:`TrialStore`, which turns each into an :class:`~.protocol.Attempt` (a lost Spark
  task's reason, or the error hyperopt stored, as its ``error``); :func:`restore` puts a
  resumed search's recorded trials back as finished documents.

:func:`space_expression` turns a :class:`~sparkdl_tune.search.space.SearchSpace` into
hyperopt's space. hyperopt itself is imported inside the functions (it is heavy), never at
module level.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Optional

from .protocol import (
    CANCELLED,
    FAILED,
    OK,
    QUEUED,
    RUNNING,
    STATUS_FAIL,
    STATUS_OK,
    Attempt,
    Proposer,
)

_NEW, _RUNNING, _DONE, _ERROR, _CANCEL = 0, 1, 2, 3, 4  # hyperopt.JOB_STATE_NEW ... _CANCEL
_STATES = {_NEW: QUEUED, _RUNNING: RUNNING, _DONE: OK, _ERROR: FAILED, _CANCEL: CANCELLED}
HYPEROPT_SPARK_LOGGER = "hyperopt-spark"
_TASK_FAILED = re.compile(r"trial task (\d+) failed, exception is (.*)", re.S)


# -- the space -------------------------------------------------------------------------
def space_expression(space) -> dict[str, Any]:
    """hyperopt's space expression of ``space``, for ``fmin(space=...)``."""
    import copy

    from hyperopt import hp
    from hyperopt.pyll import scope

    from ..dimensions import EDGE, Choice, Fixed, IntRange, QUniform, Subset, Uniform
    from ..space import nest

    def expr(spec, label: str, options: Optional[list] = None):
        if isinstance(spec, Choice):
            return hp.choice(label, options if options is not None else list(spec.options))
        if isinstance(spec, Uniform):  # and LogUniform: its kind names hyperopt's function
            return getattr(hp, spec.kind)(label, spec.warp(spec.low), spec.warp(spec.high))
        if isinstance(spec, QUniform):
            e = hp.quniform(label, spec.low, spec.high, spec.q)
            return scope.int(e) if isinstance(spec.value_of(0), int) else e
        if isinstance(spec, IntRange):
            # hyperopt searches the step index; the point gets the integer itself
            k = hp.quniform(label, -0.5 + EDGE, spec.size - 0.5 - EDGE, 1)
            return scope.int(k * spec.step + spec.low)
        if isinstance(spec, Subset):  # one categorical over the allowed subsets' indices
            return hp.randint(label, spec.size)
        raise TypeError(f"no hyperopt expression for {type(spec).__name__}")

    def exprs(dims) -> dict[str, Any]:
        out = {}
        for d in dims:
            if isinstance(d.spec, Fixed):
                out[d.name] = d.spec.real()
            elif d.children:
                options = [{"value": copy.deepcopy(b.value), **exprs(kids)}
                           for b, kids in zip(d.spec.options, d.children)]
                out[d.name] = expr(d.spec, d.label, options)
            else:
                out[d.name] = expr(d.spec, d.label)
        return nest(out)

    return exprs(space.root)


# -- algorithms ------------------------------------------------------------------------
ALGORITHMS = ("tpe", "random", "anneal")


def algorithm(name: str, space: Any = None, seed: int = 0, **options: Any) -> Callable[..., list]:
    """hyperopt's own ``tpe``, ``random`` or ``anneal`` suggest function (``seed``: unused,
    :func:`run`'s seed makes hyperopt's random stream)."""
    import functools

    import hyperopt

    module = {"tpe": hyperopt.tpe, "random": hyperopt.rand, "anneal": hyperopt.anneal}[name]
    return functools.partial(module.suggest, **options) if options else module.suggest


def new_trial_docs(domain: Any, trials: Any, new_ids: Sequence[int],
                   points: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Trial documents for ``points`` (vals), in the format ``hyperopt.rand.suggest`` makes."""
    from hyperopt.base import miscs_update_idxs_vals

    from ..space import to_python

    labels = list(domain.params)
    docs: list[dict] = []
    for new_id, vals in zip(new_ids, points):
        idxs = {lab: [new_id] if lab in vals else [] for lab in labels}
        values = {lab: [to_python(vals[lab])] if lab in vals else [] for lab in labels}
        misc = {"tid": new_id, "cmd": domain.cmd, "workdir": domain.workdir}
        miscs_update_idxs_vals([misc], idxs, values)
        docs.extend(trials.new_trial_docs([new_id], [None], [domain.new_result()], [misc]))
    return docs


def suggest_of(algo: Any) -> Callable[..., list]:
    """``algo`` on hyperopt's suggest protocol: a package :class:`~.protocol.Proposer` wrapped
    (picklable, as SparkTrials ships it); hyperopt's own suggest function as it is."""
    if callable(getattr(algo, "propose", None)):
        return functools.partial(_propose, proposer=algo)
    return algo


def _propose(new_ids: Sequence[int], domain: Any, trials: Any, seed: int, *,
             proposer: Proposer) -> list[dict]:
    """hyperopt's suggest protocol for ``proposer``: its points as new trial documents."""
    space = getattr(proposer, "space", None)
    if space is not None:
        check_domain(space, domain)
    points = list(proposer.propose(len(new_ids), TrialStore(trials), int(seed)))
    points = points[:len(new_ids)]
    return new_trial_docs(domain, trials, new_ids[:len(points)], points)


def check_domain(space: Any, domain: Any) -> None:
    """Refuse a ``fmin`` space whose labels differ from the space the algorithm was built on."""
    from ...errors import ConfigError

    got, want = set(domain.params), set(space.labels)
    if got != want:
        raise ConfigError(
            f"fmin was given a space with labels {sorted(got)} but the algorithm was built for "
            f"{space.source} with labels {sorted(want)}; pass space_expression(space) of the same "
            "SearchSpace")


# -- the trial store -------------------------------------------------------------------
class TrialStore:
    """hyperopt's live trial store as a :class:`~.protocol.Store`: each document as an
    :class:`~.protocol.Attempt`, read afresh on every call."""

    def __init__(self, trials: Any):
        self.trials = trials

    def attempts(self) -> list[Attempt]:
        return sorted((attempt_of(d) for d in trial_docs(self.trials)), key=lambda a: a.number)

    def stopping(self) -> bool:
        return stopping(self.trials)


def attempt_of(doc: Mapping[str, Any]) -> Attempt:
    """One trial document as an :class:`~.protocol.Attempt`."""
    from ..space import to_python

    book = doc.get("book_time")
    return Attempt(number=int(doc["tid"]), state=_STATES.get(doc.get("state"), QUEUED),
                   vals={k: [to_python(v) for v in vs] for k, vs in doc["misc"]["vals"].items()},
                   result=doc.get("result"), error=error_of(doc),
                   started=_timestamp(book) if book is not None else None)


def _timestamp(utc: datetime) -> Optional[float]:
    try:
        return utc.replace(tzinfo=timezone.utc).timestamp()
    except (AttributeError, TypeError, ValueError):
        return None


def trial_docs(trials: Any) -> list[dict]:
    """Every trial document, failed and errored ones included (``trials.trials`` drops errors)."""
    docs = getattr(trials, "_dynamic_trials", None)
    if docs is None:
        return list(trials.trials)
    exp_key = getattr(trials, "_exp_key", None)
    return [t for t in docs if t.get("exp_key") == exp_key]


def ok_loss(doc: Mapping[str, Any]) -> float | None:
    """The loss of a finished, successful trial with a finite loss, else ``None``."""
    result = doc.get("result") or {}
    if doc.get("state") != _DONE or result.get("status") != STATUS_OK:
        return None
    loss = result.get("loss")
    try:
        return float(loss) if loss is not None and math.isfinite(float(loss)) else None
    except (TypeError, ValueError):
        return None


def stopping(trials: Any) -> bool:
    """True once nothing more will finish on its own: SparkTrials is stopping (timeout, early
    stop, cancel), or the store is driver-side ``Trials``, whose queued trials run only after
    the suggest function returns."""
    if not getattr(trials, "asynchronous", False):
        return True
    return bool(getattr(trials, "_fmin_cancelled", False))


def error_of(doc: Mapping[str, Any]) -> Optional[str]:
    """``type: message`` of an errored or cancelled document, if hyperopt stored one; a
    parallel trial whose Spark task failed (a lost worker or executor): one line saying so
    (:func:`~.task_failure.reason` of the Spark text :func:`capture_lost_tasks` kept)."""
    if doc["misc"].get("spark_error") or _java_error(doc["misc"].get("error")):
        from .task_failure import reason

        return reason(doc["misc"].get("spark_error"))
    error = doc["misc"].get("error")
    return f"{error[0]}: {error[1]}" if error else None


def _java_error(error) -> bool:
    """SparkTrials' record of a failed Spark job: the Java error's type, no message."""
    return bool(error) and "Py4JJavaError" in str(error[0]) and not error[1]


def restore(trials: Any, records: Sequence[Any]) -> None:
    """Insert ``records`` (:class:`~sparkdl_tune.spec.trial.TrialRecord`) into an empty trial
    store as finished documents."""
    if not records:
        return
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    tids = trials.new_trial_ids(len(records))
    specs, results, miscs = [], [], []
    for tid, r in zip(tids, records):
        specs.append(None)
        results.append({"status": STATUS_OK, "loss": r.loss, "score": r.score,
                        "params": r.params, "restored": True,
                        **({"objectives": r.objectives} if getattr(r, "objectives", None)
                           else {})} if r.ok else
                       {"status": STATUS_FAIL, "failure": r.failure, "params": r.params,
                        "restored": True})
        miscs.append({"tid": tid, "cmd": ("domain_attachment", "FMinIter_Domain"),
                      "workdir": None, "vals": r.vals,
                      "idxs": {k: [tid] if v else [] for k, v in r.vals.items()}})
    docs = trials.new_trial_docs(tids, specs, results, miscs)
    for doc in docs:
        doc["state"] = _DONE
        doc["book_time"] = doc["refresh_time"] = now
    trials.insert_trial_docs(docs)
    trials.refresh()


# -- running a search --------------------------------------------------------------------
def run(objective: Callable[[Any], dict], space, algo: Any, *, max_trials: int,
        parallel: bool, parallelism: int = 1, spark=None, timeout_seconds: Optional[int] = None,
        seed: int = 0, restored: Sequence[Any] = (), early_stop: Optional[Callable] = None,
        watch: Optional[Callable[[Any], None]] = None,
        unwatch: Optional[Callable[[Any], None]] = None, runner: str = "sparktrials",
        server=None) -> None:
    """Run the search until ``max_trials`` (restored ones count), the timeout or
    ``early_stop(store) -> bool``; ``watch(store)`` is called once the store is ready and
    ``unwatch(store)`` at the end, whatever happens (``store``: a :class:`TrialStore`). ``algo``
    is :func:`algorithm`'s or a package :class:`~.protocol.Proposer`. A search whose trials all
    failed returns normally: the caller reads the failures from the store.
    ``runner="executors"`` (parallel only) runs the trials on warm executors that ask
    ``server`` (the search's report server) for work; ``runner="driver"`` on driver threads
    (distributed trials side by side, :mod:`sparkdl_tune.search.runners`)."""
    import numpy as np
    from hyperopt import SparkTrials, Trials, fmin
    from hyperopt.exceptions import AllTrialsFailed

    if parallel and runner in ("executors", "driver"):
        trials = executor_trials(spark, parallelism, server, runner)
    else:
        trials = (SparkTrials(parallelism=parallelism, spark_session=spark) if parallel
                  else Trials())
    restore(trials, restored)
    store = TrialStore(trials)
    if watch:
        watch(store)

    def stop_fn(_trials, *args):
        return (bool(early_stop(store)) if early_stop else False), args

    try:
        with capture_lost_tasks(trials):  # a lost worker's reason, not its Java stack
            fmin(fn=objective, space=space_expression(space), algo=suggest_of(algo),
                 max_evals=max_trials, trials=trials, timeout=timeout_seconds,
                 early_stop_fn=stop_fn, show_progressbar=False,
                 rstate=np.random.default_rng(seed), return_argmin=False)
    except AllTrialsFailed:
        pass
    finally:
        if unwatch:
            unwatch(store)


@contextlib.contextmanager
def capture_lost_tasks(trials: Any) -> Iterator[None]:
    """While the block runs, keep each failed trial task's Spark text in its trial document
    and keep the Java stack out of the log (the monitor logs the trial's one-line reason).

    SparkTrials stores only ``("<class 'py4j.protocol.Py4JJavaError'>", None)`` in the
    document of a trial whose Spark task failed (its worker killed, its executor lost); the
    reason itself goes to its log, as ``trial task N failed, exception is <Java error>``
    followed by a Java stack of a hundred lines. :func:`error_of` turns the kept text into the
    attempt's one-line error (:func:`~.task_failure.reason`)."""
    logger = logging.getLogger(HYPEROPT_SPARK_LOGGER)

    def keep(record: logging.LogRecord) -> bool:
        try:
            found = _TASK_FAILED.match(record.getMessage())
        except Exception:  # a record we cannot format: not ours to judge
            return True
        if not found:
            return True
        tid, text = int(found.group(1)), found.group(2)
        for doc in list(getattr(trials, "_dynamic_trials", None) or []):
            if doc.get("tid") == tid:
                doc["misc"]["spark_error"] = text
        from ... import logs

        logs.get("tune").debug("trial %d's Spark task failed: %s", tid + 1, text)
        return False

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


# -- warm executors ----------------------------------------------------------------------
def executor_trials(spark, parallelism: int, server, kind: str = "executors") -> Any:
    """An asynchronous trial store (like SparkTrials: ``fmin`` inserts NEW documents and
    polls) whose trials run on the slots of a :mod:`~sparkdl_tune.search.runners` runner
    (``kind``: warm executors, or driver threads for distributed trials): a slot asking for
    work gets the oldest NEW document (now RUNNING) as a point, and its outcome fills the
    document in. The runner's watcher (:meth:`~sparkdl_tune.search.runners.slots.SlotThreads.watch`)
    applies the timeout and the early stop as SparkTrials does: running trials are cancelled,
    NEW and RUNNING documents become CANCEL."""
    from hyperopt import Trials, base, fmin
    from hyperopt.utils import coarse_utcnow

    from ..runners import make

    new, running = base.JOB_STATE_NEW, base.JOB_STATE_RUNNING

    class ExecutorTrials(Trials):
        asynchronous = True

        def __init__(self):
            super().__init__(exp_key=None, refresh=False)
            self._spark = spark  # (FMinIter pickles the domain for stores without a session)
            self.parallelism = parallelism
            self._fmin_cancelled, self._fmin_cancelled_reason = False, None
            self._domain = None
            self.refresh()

        def fmin(self, fn, space, algo, max_evals, timeout, loss_threshold, max_queue_len,
                 rstate, verbose, pass_expr_memo_ctrl, catch_eval_exceptions, return_argmin,
                 show_progressbar, early_stop_fn, trials_save_file=""):
            self._domain = base.Domain(fn, space)
            runner = make(kind, spark, parallelism, fn, server, self._take, self._give)
            runner.start()
            args: list = []

            def early_stop() -> bool:  # hyperopt's early_stop_fn carries its own arguments
                nonlocal args
                stop, args = early_stop_fn(self, *args)
                return bool(stop)

            end_watch = runner.watch(
                timeout, lambda: sum(1 for d in self._docs() if ok_loss(d) is not None),
                early_stop if early_stop_fn is not None else None, self._lost, self._stop,
                ("the trial slots' Spark tasks keep failing", "early stopping condition",
                 "fmin run timeout"), poll=0.5)
            failed = True
            try:
                answer = fmin(fn, space, algo, max_evals, timeout=timeout,
                              loss_threshold=loss_threshold, trials=self,
                              allow_trials_fmin=False, rstate=rstate, verbose=verbose,
                              max_queue_len=max_queue_len, return_argmin=return_argmin,
                              show_progressbar=show_progressbar, early_stop_fn=None)
                failed = False
                return answer
            finally:
                end_watch()
                runner.cancel() if failed else runner.close()

        def _docs(self) -> list:
            return list(self._dynamic_trials)

        def _take(self):
            """The oldest NEW trial as ``(tid, point)``, now RUNNING; None when there is none."""
            if self._fmin_cancelled or self._domain is None:
                return None
            for doc in self._docs():
                if doc["state"] != new:
                    continue
                doc["state"] = running
                doc["book_time"] = doc["refresh_time"] = coarse_utcnow()
                try:
                    point = self._domain.evaluate_async(base.spec_from_misc(doc["misc"]),
                                                        ctrl=None)[1]
                except Exception as exc:  # the point cannot be made: this trial errs
                    self._end(doc, base.JOB_STATE_ERROR, error=(type(exc).__name__, str(exc)))
                    continue
                return doc["tid"], point
            return None

        def _give(self, tid: int, outcome: dict) -> None:
            doc = next((d for d in self._docs() if d["tid"] == tid), None)
            if doc is None or doc["state"] != running:  # cancelled meanwhile: stays so
                return
            if "result" in outcome:
                try:
                    result = self._domain.evaluate_async2(outcome["result"], ctrl=None,
                                                          attach_attachments=False)
                except Exception as exc:
                    self._end(doc, base.JOB_STATE_ERROR, error=(type(exc).__name__, str(exc)))
                    return
                doc["result"] = result
                self._end(doc, base.JOB_STATE_DONE)
            elif "error" in outcome:
                self._end(doc, base.JOB_STATE_ERROR, error=tuple(outcome["error"]))
            else:  # the slot's Spark task failed: recorded as SparkTrials records it
                doc["misc"]["spark_error"] = outcome["lost"]
                self._end(doc, base.JOB_STATE_ERROR,
                          error=("<class 'py4j.protocol.Py4JJavaError'>", None))

        @staticmethod
        def _end(doc, state, error=None) -> None:
            if error is not None:
                doc["misc"]["error"] = error
            doc["state"] = state
            doc["refresh_time"] = coarse_utcnow()

        def _lost(self, text: str) -> None:
            """The slots keep failing: the live trials fail with Spark's text."""
            for doc in self._docs():
                if doc["state"] in (new, running):
                    doc["misc"]["spark_error"] = text
                    self._end(doc, base.JOB_STATE_ERROR,
                              error=("<class 'py4j.protocol.Py4JJavaError'>", None))

        def _stop(self, why: str) -> None:
            """End the search as SparkTrials does: NEW and RUNNING documents become CANCEL."""
            self._fmin_cancelled, self._fmin_cancelled_reason = True, why
            for doc in self._docs():
                if doc["state"] in (new, running):
                    self._end(doc, base.JOB_STATE_CANCEL, error=("cancelled", why))

    return ExecutorTrials()
