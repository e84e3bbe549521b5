"""The Optuna search engine: Optuna's samplers drive the search, an in-memory study holds it.

The API every engine module has (see :mod:`sparkdl_tune.search.engines.protocol`):
:data:`ALGORITHMS`, :func:`algorithm` and :func:`run`. Optuna's samplers (``tpe``: multivariate
TPE with groups, for conditional spaces; ``random``; ``cmaes``; ``gp``; ``nsga2`` for two
objectives) ask for points define-by-run (:mod:`.optuna_space`); a package algorithm (a
:class:`~sparkdl_tune.search.engines.protocol.Proposer`: grid, genetic, designs) proposes them
instead, and its points are enqueued in the study so it records them all the same.

The study is in memory: MLflow is the store. A resumed search's records are put back into it
(``create_trial`` / ``add_trial``), so the sampler learns from them and they count toward
``max_trials``. An outcome with status ``fail``, an objective that raised, a lost Spark task
and a cancelled trial are FAIL to the study (samplers ignore them); a trial the scheduler
pruned is COMPLETE with its loss, as with hyperopt (PRUNED with its curve reported learned no
better: TPE on a synthetic ASHA search, 120 trials, 20 seeds, the same mean best loss).

Serial trials run on the driver, one at a time; parallel ones on warm executors
(:class:`~sparkdl_tune.search.runners.executors.ExecutorRunner`), whichever runner the config
names (SparkTrials is hyperopt's), and distributed ones side by side on driver threads
(``runner="driver"``, :class:`~sparkdl_tune.search.runners.driver.DriverRunner`). optuna
itself is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Optional

from ... import logs
from . import optuna_space
from .protocol import (
    CANCELLED,
    FAILED,
    OK,
    QUEUED,
    RUNNING,
    STATUS_OK,
    Attempt,
)

log = logs.get("tune")

ALGORITHMS = ("tpe", "random", "cmaes", "gp", "nsga2")
#: option names of the random start's length (hyperopt's ``n_startup_jobs``, as the tuner sets it)
STARTUP = ("startup_trials", "n_startup_jobs", "n_startup_trials")
WAIT_SECONDS = 0.05  # the driver loop's poll while trials run in parallel


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """What :func:`algorithm` returns: the sampler's name and options and the study's
    directions; :meth:`sampler` makes a fresh one, seeded (a rerun with the same seed asks
    the same points)."""

    name: str
    options: dict = dataclasses.field(default_factory=dict)
    directions: tuple[str, ...] = ("minimize",)

    def sampler(self, seed: int) -> Any:
        optuna = _optuna()
        samplers, options = optuna.samplers, self.options
        make = {
            "tpe": lambda: samplers.TPESampler(seed=seed, **{
                "multivariate": True, "group": True, **options}),
            "random": lambda: samplers.RandomSampler(seed=seed, **options),
            "cmaes": lambda: samplers.CmaEsSampler(seed=seed, **{
                "warn_independent_sampling": False, **options}),
            "gp": lambda: samplers.GPSampler(seed=seed, **options),
            "nsga2": lambda: samplers.NSGAIISampler(seed=seed, **options),
        }[self.name]
        with warnings.catch_warnings():  # multivariate and group are "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return make()


def algorithm(name: str, space=None, seed: int = 0, **options: Any) -> Algorithm:
    """Optuna's sampler ``name`` (one of :data:`ALGORITHMS`); ``options`` go to the sampler's
    constructor (``n_startup_trials``, ``population_size``, ...) and are checked here, except
    the random start's length under any name of :data:`STARTUP` (the tuner's, hyperopt's
    ``n_startup_jobs``): ``n_startup_trials`` for the samplers that have one, ignored by the
    others. ``seed`` is unused: :func:`run`'s seed seeds the sampler, as with hyperopt."""
    from ...errors import ConfigError

    if name not in ALGORITHMS:
        raise ConfigError(f"search.algorithm '{name}' is not one of Optuna's: "
                          f"{', '.join(ALGORITHMS)}")
    if name == "gp" and not _has("torch"):
        raise ConfigError("search.algorithm gp (Optuna's GPSampler) needs PyTorch, which this "
                          "install leaves out; use tpe, cmaes or random")
    options = dict(options)
    startup = [options.pop(k) for k in STARTUP if k in options]  # random points first
    if startup and name in ("tpe", "cmaes", "gp"):
        options["n_startup_trials"] = startup[-1]
    directions = ("minimize", "minimize") if name == "nsga2" else ("minimize",)
    algo = Algorithm(name, options, directions)
    try:
        algo.sampler(seed)
    except TypeError as exc:
        raise ConfigError(f"search.algorithm {name}: Optuna's sampler refuses the options "
                          f"{sorted(options)}: {exc}") from None
    return algo


def run(objective: Callable[..., dict], space, algo: Any, *, max_trials: int, parallel: bool,
        parallelism: int = 1, spark=None, timeout_seconds: Optional[float] = None,
        seed: int = 0, restored: Sequence[Any] = (), early_stop: Optional[Callable] = None,
        watch: Optional[Callable] = None, unwatch: Optional[Callable] = None,
        runner: str = "sparktrials", server=None) -> None:
    """Run the search until ``max_trials`` attempts (restored ones count), the timeout,
    ``early_stop(store) -> True`` or a proposer's ``[]``; ``watch(store)`` once the store is
    ready, ``unwatch(store)`` at the end whatever happens. ``algo`` is what :func:`algorithm`
    returned or a :class:`~sparkdl_tune.search.engines.protocol.Proposer`. Parallel trials run
    on warm executors that ask ``server`` (the search's report server; one of their own when
    None) for work."""
    search = Search(space, algo, max_trials, seed, restored)
    if watch:
        watch(search)
    try:
        if parallel:
            if runner not in ("executors", "driver"):
                log.info("tune: with search.engine optuna, parallel trials run on warm "
                         "executors (search.runner %s is hyperopt's)", runner)
                runner = "executors"
            with contextlib.ExitStack() as stack:
                if server is None:  # the tuner passes its own; a caller of run() may not
                    from ..report_server import ReportServer, driver_host

                    server = stack.enter_context(ReportServer(lambda message: {},
                                                              driver_host(spark)))
                search.parallel(objective, spark, parallelism, server, timeout_seconds,
                                early_stop, runner)
        else:
            search.serial(objective, timeout_seconds, early_stop)
    finally:
        if unwatch:
            unwatch(search)


class Search:
    """The live search: the study, its attempts (the :class:`~.protocol.Store` a watcher,
    ``early_stop`` and a proposer read) and the loops that run it."""

    def __init__(self, space, algo, max_trials: int, seed: int, restored: Sequence[Any]):
        optuna = _optuna()
        self.space, self.algo, self.max_trials, self.seed = space, algo, max_trials, seed
        self.proposer = None if isinstance(algo, Algorithm) else algo
        self.directions = algo.directions if isinstance(algo, Algorithm) else ("minimize",)
        sampler = algo.sampler(seed) if isinstance(algo, Algorithm) else \
            optuna.samplers.RandomSampler(seed=seed)  # never samples: every point is enqueued
        self.study = optuna.create_study(sampler=sampler, directions=list(self.directions))
        self._attempts: dict[int, Attempt] = {}
        self._lock = threading.RLock()  # the attempts and the study
        self._halted = self._serial = False  # stopped early; trials run on the driver
        self.exhausted = False  # the proposer said []
        self.why: Optional[str] = None  # why the search stopped early
        self._restore(restored)

    # -- the Store protocol ------------------------------------------------------------------
    def attempts(self) -> list[Attempt]:
        with self._lock:
            return [dataclasses.replace(a) for _, a in sorted(self._attempts.items())]

    def stopping(self) -> bool:
        return self._halted or self._serial

    # -- asking and telling ------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[tuple[int, dict[str, Any]]]:
        """Up to ``n`` new attempts (now QUEUED) as ``(number, vals)``; ``[]`` when the search
        has no more to give (budget spent, proposer exhausted, stopping)."""
        with self._lock:
            n = min(n, self.max_trials - len(self._attempts))
        if n <= 0 or self._halted or self.exhausted:
            return []
        points = None
        if self.proposer is not None:  # outside the lock: a design may wait on running steps
            points = [dict(p) for p in self.proposer.propose(n, self, self.seed)][:n]
            if not points:
                self.exhausted = True
                return []
        out = []
        with self._lock:
            if self._halted:
                return []
            for i in range(n if points is None else len(points)):
                if points is not None:
                    fixed, _ = optuna_space.params(self.space, points[i])
                    self.study.enqueue_trial(fixed, skip_if_exists=False)
                trial = self.study.ask()
                vals = optuna_space.suggest(trial, self.space)
                self._attempts[trial.number] = Attempt(trial.number, QUEUED,
                                                       self._all_labels(vals))
                out.append((trial.number, vals))
        return out

    def start(self, number: int) -> bool:
        with self._lock:
            attempt = self._attempts[number]
            if attempt.state != QUEUED:
                return False
            attempt.state, attempt.started = RUNNING, time.time()
            return True

    def tell(self, number: int, outcome: dict[str, Any]) -> None:
        """End attempt ``number`` with ``outcome``: ``{"result": dict}`` (the objective
        returned), ``{"error": (type, message)}`` (it raised), ``{"lost": text}`` (its Spark
        task failed) or ``{"cancelled": why}``."""
        optuna = _optuna()
        with self._lock:
            attempt = self._attempts.get(number)
            if attempt is None or attempt.ended:  # cancelled meanwhile: stays so
                return
            values = None
            if "result" in outcome:
                attempt.state, attempt.result = OK, dict(outcome["result"])
                values = self._values(attempt.result)
            elif "error" in outcome:
                kind, message = (list(outcome["error"]) + ["", ""])[:2]
                attempt.state, attempt.error = FAILED, f"{kind}: {message}"
            elif "lost" in outcome:
                from .task_failure import reason

                attempt.state, attempt.error = FAILED, reason(outcome["lost"])
            else:
                attempt.state, attempt.error = CANCELLED, f"cancelled: {outcome['cancelled']}"
            state = optuna.trial.TrialState.COMPLETE if values else \
                optuna.trial.TrialState.FAIL
            self.study.tell(number, values, state=state, skip_if_finished=True)

    def _values(self, result: dict[str, Any]) -> Optional[list[float]]:
        """The study's values of an outcome (a pruned trial's loss too), None if it failed."""
        if result.get("status") != STATUS_OK:
            return None
        try:
            got = [float(x) for x in result["objectives"]][:2] if len(self.directions) == 2 \
                else [float(result["loss"])]
        except (KeyError, TypeError, ValueError):
            return None
        return got if len(got) == len(self.directions) and \
            all(math.isfinite(x) for x in got) else None

    def stop(self, why: str) -> None:
        """Stop: queued and running attempts end cancelled."""
        with self._lock:
            self._halted, self.why = True, self.why or why
            for a in self._attempts.values():
                if a.state in (QUEUED, RUNNING):
                    self.tell(a.number, {"cancelled": why})

    def _all_labels(self, vals: dict[str, Any]) -> dict[str, list]:
        return {lab: [vals[lab]] if lab in vals else [] for lab in self.space.labels}

    def _restore(self, records: Sequence[Any]) -> None:
        """Put a resumed search's records back: finished trials of the study, ended
        attempts of the store (their result marked ``restored``)."""
        optuna = _optuna()
        for r in records:
            vals = {k: v for k, v in r.vals.items() if len(v)}
            params, dists = optuna_space.params(self.space, vals)
            objectives = getattr(r, "objectives", None)
            result = ({"status": STATUS_OK, "loss": r.loss, "score": r.score,
                       "params": r.params, "restored": True,
                       **({"objectives": objectives} if objectives else {})} if r.ok else
                      {"status": "fail", "failure": r.failure, "params": r.params,
                       "restored": True})
            values = self._values(result)
            state = optuna.trial.TrialState.COMPLETE if values else \
                optuna.trial.TrialState.FAIL
            self.study.add_trial(optuna.trial.create_trial(
                state=state, values=values, params=params, distributions=dists))
            number = len(self.study.trials) - 1
            self._attempts[number] = Attempt(number, OK, self._all_labels(vals), result,
                                             started=getattr(r, "start", None) or None)

    # -- the loops ---------------------------------------------------------------------------
    def serial(self, objective: Callable[..., dict], timeout: Optional[float],
               early_stop: Optional[Callable]) -> None:
        """One trial at a time on the driver; the timeout and the early stop are checked
        between trials (a running one is not cut short)."""
        self._serial = True  # nothing runs while a proposer proposes: stopping() is True
        started = time.monotonic()
        while True:
            if timeout is not None and time.monotonic() - started > timeout:
                self.why = "timeout"
                return
            if early_stop is not None and self._ended() and early_stop(self):
                self.why = "early stop"
                return
            asked = self.ask(1)
            if not asked:
                return
            number, vals = asked[0]
            self.start(number)
            try:
                self.tell(number, {"result": dict(objective(vals, None))})
            except Exception as exc:  # the objective raised: this trial fails, the search goes on
                self.tell(number, {"error": (type(exc).__name__, str(exc).strip()[:300])})

    def parallel(self, objective: Callable[..., dict], spark, parallelism: int, server,
                 timeout: Optional[float], early_stop: Optional[Callable],
                 kind: str = "executors") -> None:
        """The slots of runner ``kind`` (warm executors, or driver threads for distributed
        trials) take QUEUED attempts; the driver keeps ``parallelism`` of them
        queued or running while a watcher thread stops the search on the timeout, the early
        stop or lost slots (queued and running attempts cancelled)."""
        from ..runners import make

        pending: list[int] = []

        def take():
            with self._lock:
                while pending:
                    number = pending.pop(0)
                    if self.start(number):
                        return number, self._point(number)
            return None

        slots = make(kind, spark, parallelism, objective, server, take, self.tell)
        slots.start()
        # (the stop rules count failed trials too: patience)
        end_watch = slots.watch(timeout, self._ended,
                                (lambda: early_stop(self)) if early_stop is not None else None,
                                self._lose_live, self.stop,
                                ("the trial slots' Spark tasks keep failing", "early stop",
                                 "timeout"))
        try:
            while not self._halted:
                live = self._live()
                asked = self.ask(parallelism - len(live)) if len(live) < parallelism else []
                with self._lock:
                    pending.extend(number for number, _ in asked)
                if not asked and not live and not self._live():
                    return  # budget spent (or proposer done) and every trial ended
                if not asked:
                    time.sleep(WAIT_SECONDS)
        finally:
            end_watch()
            slots.cancel() if self._halted else slots.close()

    def _lose_live(self, text: str) -> None:
        for a in self._live():
            self.tell(a.number, {"lost": text})

    def _live(self) -> list[Attempt]:
        with self._lock:
            return [a for a in self._attempts.values() if a.state in (QUEUED, RUNNING)]

    def _point(self, number: int) -> dict[str, Any]:
        return self._attempts[number].point()

    def _ended(self) -> int:
        with self._lock:
            return sum(1 for a in self._attempts.values() if a.ended)



def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _optuna():
    """optuna, imported once, its per-trial INFO lines off."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna

