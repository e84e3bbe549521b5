"""The ``tune`` workflow: search space -> trials on Spark -> best parameters -> final model.

Driver side. The engine's own calls (hyperopt's ``fmin``, SparkTrials, its trial store) are
its module's under :mod:`sparkdl_tune.search.engines` (``search.engine``); this module orders
the work:

1. load and check the space (every key must be a config key) and the algorithm — bad input
   fails here, before any training;
2. validate and materialise the dataset once (shared by every trial);
3. pick the execution mode: ``parallel`` (SparkTrials, one in-process training per Spark task)
   or ``distributed`` (driver-side Trials, each trial a multi-rank job of
   ``execution.backend``: Horovod or a tf.distribute barrier stage), and say why;
4. find the search's MLflow parent run by name: resume its finished trials, or start it;
5. run the engine under the budget while :class:`~sparkdl_tune.search.monitor.Monitor` records each
   trial as it lands;
6. retrain the best on train+validation with the final epoch budget, evaluate on test, log and
   register it, and write ``best_params.json`` and ``summary.json`` atomically.
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any

from .. import logs
from ..config.loader import with_values
from ..config.schema import Config
from ..errors import ConfigError, FatalError, public
from ..spec.trial import TrialRecord
from ..tracking.journal import Journal
from ..tracking.layout import (
    KIND_SEARCH,
    TAG_ALGORITHM,
    TAG_DEFINITION,
    TAG_EXECUTION_MODE,
    TAG_FINAL,
    TAG_KIND,
    TAG_MAX_TRIALS,
    TAG_SEARCH,
)
from . import baseline, pareto
from .direction import mode_of
from .final import changed_settings, retrain
from .folds import check as cv_check
from .live import LiveTrials
from .monitor import Monitor
from .report_server import ReportServer, driver_host
from .space import SearchSpace

log = logs.get("tune")

PARALLEL_MAX_SHARD_MB = 4096  # a train split bigger than this goes to distributed trials
TPE_STARTUP_TRIALS = 10  # random trials before TPE models the results (at most)


def load_space(cfg: Config, space: SearchSpace | None = None) -> SearchSpace:
    """The search space (``space`` when given, else from ``search.space`` or
    ``search.space_file``), checked against the config: a sample point must make a valid
    config."""
    s = cfg.search
    if space is not None:
        if not isinstance(space, SearchSpace):
            raise ConfigError(f"space must be a sparkdl_tune.SearchSpace, got "
                              f"{type(space).__name__}; build one with SearchSpace({{...}})")
    elif s.space is not None:
        space = SearchSpace.from_dict(s.space, source="search.space")
    elif s.space_file is not None:
        if not os.path.isfile(s.space_file):
            raise ConfigError(f"search.space_file {s.space_file} does not exist; check the path")
        space = SearchSpace.from_yaml(s.space_file)
    elif s.algorithm != "pyramid":  # pyramid makes its own
        raise ConfigError("no search space: set search.space_file (e.g. conf/spaces/mlp.yaml) "
                          "or search.space")
    if s.algorithm == "pyramid":
        space = _pyramid_space(cfg, space)
    import numpy as np

    rng = np.random.default_rng(s.seed)
    points = space.grid_points()[:50] if s.algorithm == "grid" else [
        space.decode(space.sample_vals(rng)) for _ in range(5)]
    for point in points:
        with_values(cfg, point, where=f"{space.source}")
    return space


def _pyramid_space(cfg: Config, space: SearchSpace | None) -> SearchSpace:
    """The pyramid's space: ``model.units`` over every network it can grow, up to the input
    width read from the dataset's manifest (no Spark needed)."""
    from ..driver.dataset import read_manifest
    from .algorithms.pyramid import space_entries

    if cfg.model.architecture != "mlp":
        raise ConfigError(f"search.algorithm pyramid grows a dense network, but "
                          f"model.architecture is {cfg.model.architecture!r}; set it to mlp")
    width, out = data_widths(cfg, read_manifest(cfg.data.path))
    return SearchSpace(space_entries(space, width, out, cfg.search.pyramid),
                       source=space.source if space is not None else "search.pyramid")


def data_widths(cfg: Config, manifest) -> tuple[int, int]:
    """(input width, output width) of the models the search trains."""
    layout = manifest.layout
    if layout.feature_kind == "array":
        width = manifest.num_features
    else:
        width = len(cfg.data.feature_columns or layout.features)
    if layout.task != "classification":
        return width, 1
    counts = manifest.class_counts.get("train") or {}
    return width, int(layout.num_classes or len(counts) or 2)


def design_options(cfg: Config, space: SearchSpace) -> dict[str, Any]:
    """The options of a staged design (sweep: where each dimension starts; pyramid: the
    widths it grows between)."""
    from ..config.loader import as_flat_dict

    s = cfg.search
    if s.algorithm == "sweep":
        flat = {f"{section}.{k}": v for section in ("model", "training", "data", "execution")
                for k, v in as_flat_dict(getattr(cfg, section)).items()}
        return {"points": s.sweep.points, "start": flat}
    from ..driver.dataset import read_manifest

    width, out = data_widths(cfg, read_manifest(cfg.data.path))
    return {"input_dim": width, "output_size": out, "min_delta": s.pyramid.min_delta,
            "start_units": s.pyramid.start_units, "max_layers": s.pyramid.max_layers}


def objective_metric(cfg: Config, space: SearchSpace | None = None) -> tuple[str, str]:
    """(metric, mode) of the search; a metric no trial's training logs is a ConfigError now,
    not "all trials failed" at the end (unless the space itself varies training.metrics)."""
    from ..executor.compilation import logged_metrics

    metric = cfg.search.metric or ("val_accuracy" if cfg.model.task == "classification"
                                   else "val_loss")
    mode = cfg.search.mode or mode_of(metric)
    varied = space is not None and any(d.name == "training.metrics" for d in space.dimensions)
    logged = logged_metrics(cfg.model, cfg.training)
    if not varied and metric not in logged:
        raise ConfigError(f"search.metric is {metric!r} but the trials' training logs only "
                          f"{', '.join(logged)}; set search.metric to one of them, or add "
                          f"{metric.removeprefix('val_')!r} to training.metrics")
    return metric, mode


def choose_mode(cfg: Config, spark, data) -> tuple[str, int, int, str]:
    """(mode, parallelism, TensorFlow threads per trial, why)."""
    from ..driver.launch import threads_per_proc
    from ..driver.session import slots

    s, n = cfg.search, cfg.execution.num_proc
    available = slots(spark)
    shard_mb = data.rows("train") * (data.input_dim + 1) * 4 / 2**20
    if s.execution_mode != "auto":
        mode, why = s.execution_mode, "as configured (search.execution_mode)"
    elif n > 1:
        mode, why = "distributed", f"execution.num_proc={n} asks for {n}-rank trials"
    elif available < 2:
        mode, why = "distributed", f"only {available} task slot: trials run one at a time"
    elif shard_mb > PARALLEL_MAX_SHARD_MB:
        mode, why = "distributed", (f"the train split ({shard_mb:.0f} MB) is too big for one "
                                    "task: each trial is a multi-rank job")
    else:
        mode, why = "parallel", (f"{available} task slots and a {shard_mb:.0f} MB train split "
                                 "that fits one task")
    if mode == "parallel":
        parallelism = min(s.parallelism or available, available, s.max_trials)
        threads = threads_per_proc(spark, parallelism, cfg.execution.threads_per_proc)
        return mode, parallelism, threads, why
    parallelism, side = side_by_side(cfg, available)
    return (mode, parallelism,
            threads_per_proc(spark, n * parallelism, cfg.execution.threads_per_proc),
            why + side)


def side_by_side(cfg: Config, available: int) -> tuple[int, str]:
    """How many distributed trials run at once, and what the log says about it: up to
    ``search.parallelism`` (default 1) barrier stages of ``num_proc`` ranks where the slots
    allow; Horovod and cross-validated trials one at a time."""
    s, ex = cfg.search, cfg.execution
    wanted = s.parallelism or 1
    if wanted == 1:
        return 1, ""
    if ex.backend != "tf_distribute" or ex.num_proc < 2:
        return 1, (f"; search.parallelism={wanted} is not used: {ex.backend} trials of "
                   f"{ex.num_proc} rank(s) run one at a time (side by side needs "
                   "execution.backend=tf_distribute)")
    if s.cv_folds:
        return 1, (f"; search.parallelism={wanted} is not used: a cross-validated trial's "
                   "folds take the free slots")
    fits = max(1, available // ex.num_proc)
    parallelism = min(wanted, fits, s.max_trials)
    capped = f" (the {available} task slots hold {fits})" if fits < wanted else ""
    return parallelism, (f"; {parallelism} trials of {ex.num_proc} ranks at a time, each its "
                         f"own barrier stage{capped}")


@public
def tune(cfg: Config, spark=None, space: SearchSpace | None = None) -> dict[str, Any]:
    """Run (or resume) the search ``cfg.search.name``; returns the summary it writes.

    Args:
        cfg: The full configuration.
        spark: A SparkSession; made from ``cfg.spark`` when omitted.
        space: A :class:`SearchSpace` built in Python; default: the config's
            ``search.space`` / ``search.space_file``.
    """
    from ..driver.train import check_installed, check_writable, prepare_inputs
    from ..tracking import store as tracking
    from ..tracking.results import log_space, usage_of
    from .algorithms import DESIGNS, make_algo, make_design
    from .algorithms.staged import Staged
    from .dimensions import check_subsets

    started = time.monotonic()
    s = cfg.search
    space = load_space(cfg, space)
    options = dict(s.genetic.__dict__) | {"seed": s.seed} if s.algorithm == "genetic" else {}
    if s.algorithm == "tpe":
        # hyperopt's default is 20 random starts; a budget of a few dozen trials needs fewer
        options = {"n_startup_jobs": max(3, min(TPE_STARTUP_TRIALS, s.max_trials // 4))}
    if s.algorithm == "nsga2":  # optuna's NSGA-II breeds generations of search.genetic.population
        options = {"population_size": s.genetic.population}
    design = None
    if s.algorithm in DESIGNS:
        design = make_design(s.algorithm, space, **design_options(cfg, space))
        planned = design.planned()
        if planned and planned > s.max_trials:
            raise ConfigError(f"search.algorithm {s.algorithm} runs {planned} trials here but "
                              f"search.max_trials is {s.max_trials}; raise max_trials to "
                              f"{planned}")
    algo = None if design else make_algo(s.algorithm, space, s.engine, **options)
    metric, mode = objective_metric(cfg, space)
    pareto.second_objective(s, metric)  # search.objectives: checked before any training
    baseline.check(cfg)  # search.baseline: its keys and values, before any training
    cv_check(s)  # search.cv_folds: settings it cannot go with, before any training
    check_writable(cfg, search=True)  # output folder, cache, store: before any of them is used
    check_installed(cfg)
    tracking.setup(cfg.mlflow)
    from ..tracking.resume import count_trials, find_search, finished_trials
    from .definition import check, definition, to_tag

    defined = definition(cfg, space, metric, mode)
    previous = find_search(cfg.mlflow, s.name)
    final_only = False  # a finished search whose final model is retrained, no trial run
    if previous is not None:
        tags = previous.data.tags
        recorded = count_trials(cfg.mlflow, previous.info.run_id)
        changed = check(s.name, tags.get(TAG_DEFINITION), defined, s.resume, recorded)
        finished = bool(tags.get(TAG_FINAL))
        if finished and not (changed and s.max_trials > recorded):
            final_now = changed_settings(cfg, tags[TAG_FINAL]) \
                if s.retrain and tags[TAG_FINAL] != "none" else []
            if not final_now:
                log.info("tune: search %r already finished (run %s); nothing to train",
                         s.name, previous.info.run_id)
                return _finished_summary(cfg, previous)
            log.info("tune: search %r is finished but its final settings changed (%s); "
                     "retraining the final model only", s.name, "; ".join(final_now))
            final_only = True
        if changed:
            log.info("tune: extending search %r (search.resume=extend): %s; its %d recorded "
                     "trials are kept", s.name, "; ".join(changed), recorded)
    prepared = prepare_inputs(cfg, spark)
    check_subsets(space.dimensions, prepared.data.feature_names)  # columns it lacks: exit 2
    from ..driver.backbone import check_and_ship_space

    check_and_ship_space(space.dimensions, cfg.model.backbone, prepared.spark)  # idem
    exec_mode, parallelism, threads, why = choose_mode(cfg, prepared.spark, prepared.data)
    folds = _folds(cfg, prepared, exec_mode, parallelism)  # (fold data, folds at once)
    if design is not None:  # a step may plan for the trials that run side by side
        algo = Staged(design, space, width=parallelism)
    log.info("tune: search %r, %s over %d dimensions, budget %d trials; %s mode (%s)%s",
             s.name, s.algorithm, len(space.dimensions), s.max_trials, exec_mode, why,
             f", {parallelism} at a time" if exec_mode == "parallel" else "")
    journal = Journal.of_search(s.output_dir, s.name)
    if previous and journal.pending():  # kept while MLflow was away: recorded before resuming
        _replay_or_fail(cfg, journal, previous.info.run_id)
    restored = finished_trials(cfg.mlflow, previous.info.run_id, space) if previous else []
    if restored:
        log.info("tune: resuming %r with %d finished trials from MLflow", s.name, len(restored))
    trial_cfg = cfg
    trial_epochs = trial_epoch_budget(cfg)
    if trial_epochs != cfg.training.epochs:
        trial_cfg = with_values(cfg, {"training.epochs": trial_epochs})
    if exec_mode == "parallel" and cfg.execution.num_proc != 1:
        trial_cfg = with_values(trial_cfg, {"execution.num_proc": 1})
    tags = {TAG_KIND: KIND_SEARCH, TAG_SEARCH: s.name, TAG_ALGORITHM: s.algorithm,
            TAG_EXECUTION_MODE: exec_mode}
    with tracking.start_run(cfg.mlflow, s.name, tags=tags,
                            resume_run_id=previous.info.run_id if previous else None) as parent:
        parent_id = parent.info.run_id
        # "": not finished (again), until this run's retrain sets it
        tracking.set_tags({TAG_DEFINITION: to_tag(defined), TAG_FINAL: "",
                           TAG_MAX_TRIALS: str(s.max_trials)})
        log_space(space, parent_id)  # the ranges the report's edge warnings look at
        if not previous:
            tracking.log_params({"search.algorithm": s.algorithm,
                                 "search.max_trials": s.max_trials,
                                 "search.metric": metric, "search.mode": mode,
                                 "search.space": json.dumps(space_description(space))})
        base = baseline.check(trial_cfg)
        base = baseline.run(base, prepared, parent_id, metric, mode, trial_epochs) if base \
            else None
        scheduler = _scheduler(cfg, metric, mode, trial_epochs, restored)
        live = LiveTrials(cfg.mlflow, parent_id, s.name, space, scheduler, metric)
        total = min(s.max_trials, len(space.grid_vals())) if s.algorithm == "grid" else (
            design.planned() if design else None)
        monitor = Monitor(cfg.mlflow, parent_id, s, space, metric, mode, restored, live=live,
                          journal=journal,
                          scheduler=scheduler if s.scheduler != "fifo" else None, total=total)
        with ReportServer(live.handle, driver_host(prepared.spark)) as server:
            if not final_only:
                _search(trial_cfg, prepared, space, algo, monitor, exec_mode, parallelism,
                        threads, restored, server, folds)
        live.close()
        if journal.pending():  # the server was away: nothing more happens before they are in
            _replay_or_fail(cfg, journal, parent_id)
        best = pareto.for_retrain(s, monitor, _best_or_fail(monitor))  # 2 objectives: rule
        if design is not None:  # a design's own answer, not the best trial seen on the way
            best = _design_choice(design, space, monitor) or best
        final = retrain(cfg, prepared, space, best, parent_id) if s.retrain else None
        summary = _summary(cfg, monitor, best, final, exec_mode, metric, mode, started)
        summary["model"] = usage_of(cfg.mlflow, final, cfg.model.task)  # name, URI, snippet
        study = _study(cfg, space, monitor, best, final, design, base)
        if study:  # the designs' own record: tables for the report, figures for the summary
            tracking.log_study(study, parent_id)
            summary.update(study)
        tracking.log_metrics({}, {f"best_{metric}": best.score,
                                  "trials_finished": len(monitor.finished),
                                  "trials_failed": len(monitor.failures)})
        tracking.set_tags({TAG_FINAL: (final or {}).get("run_id", "none")})
    if s.report:
        summary["report"] = _report(cfg, parent_id)
    _write_outputs(cfg, summary, best)
    return summary


def _search(cfg, prepared, space, algo, monitor: Monitor, exec_mode, parallelism, threads,
            restored: list[TrialRecord], server=None, folds=((), 1)) -> None:
    from .engines import load
    from .objective import TrialSpec, evaluate

    s = cfg.search
    remaining = s.max_trials - len(restored)
    if remaining <= 0:
        log.info("tune: the budget of %d trials is already spent", s.max_trials)
        return
    metric, mode = monitor.metric, monitor.mode
    runner = s.runner
    if runner != "executors" and exec_mode != "parallel":  # (the default says nothing)
        log.info("tune: search.runner %s applies to parallel trials; these are "
                 "%s trials, run from the driver", runner, exec_mode)
    elif runner == "executors" and exec_mode == "parallel":
        log.info("tune: parallel trials run on warm executors (one long-lived Spark task per "
                 "slot takes trial after trial)")
    on_threads = exec_mode == "distributed" and parallelism > 1  # side by side: driver threads
    with _warm_ranks(cfg, prepared, exec_mode, folds, on_threads) as ranks:
        spec = TrialSpec(base=cfg, data=prepared.data, space=space, metric=metric, mode=mode,
                         threads=threads, in_spark_task=exec_mode == "parallel",
                         report_to=server.address if server is not None else None,
                         folds=tuple(folds[0]), fold_slots=folds[1], ranks=ranks)
        # (all trials failed: reported with every distinct reason by _best_or_fail)
        load(s.engine).run(functools.partial(evaluate, spec), space, algo, max_trials=s.max_trials,
                   parallel=exec_mode == "parallel" or on_threads, parallelism=parallelism,
                   spark=prepared.spark,
                   timeout_seconds=int(s.timeout_minutes * 60) if s.timeout_minutes else None,
                   seed=s.seed + len(restored), restored=restored,
                   early_stop=monitor.early_stop_fn, watch=monitor.start, unwatch=monitor.close,
                   runner="driver" if on_threads else runner, server=server)


def _warm_ranks(cfg, prepared, exec_mode: str, folds, on_threads: bool = False):
    """The warm ranks of a ``distributed`` search on ``tf_distribute`` (``execution.warm``;
    one set per driver thread when trials run side by side), ended when the search's trials
    are; otherwise nothing: each trial launches its ranks (Horovod always; a cross-validated
    trial's folds, which may train at once)."""
    import contextlib

    ex = cfg.execution
    if not (exec_mode == "distributed" and ex.warm and ex.num_proc > 1
            and ex.backend == "tf_distribute" and not folds[0]):
        return contextlib.nullcontext()
    from ..driver.launch.warm import ThreadRanks, WarmRanks

    return (ThreadRanks if on_threads else WarmRanks)(prepared.spark,
                                                      start_timeout=ex.start_timeout)


def _folds(cfg: Config, prepared, exec_mode: str, parallelism: int) -> tuple[list, int]:
    """``search.cv_folds``: the folds' data (materialised once) and how many folds of a trial
    train at once (the task slots left to each running trial); ``([], 1)`` without folds."""
    from ..driver.folds import fold_data
    from ..driver.session import slots
    from .folds import slots_per_trial

    k = cfg.search.cv_folds
    if not k:
        return [], 1
    per_trial = parallelism if exec_mode == "parallel" else cfg.execution.num_proc
    at_once = slots_per_trial(k, slots(prepared.spark), per_trial,
                              horovod=exec_mode == "distributed" and per_trial > 1
                              and cfg.execution.backend == "horovod")
    data = fold_data(prepared.spark, prepared.data, k, seed=cfg.execution.seed,
                     min_files=max(2, cfg.execution.num_proc),
                     row_group_mb=cfg.data.row_group_mb)
    log.info("tune: %d-fold cross-validation per trial on train+validation (%d rows), %d "
             "fold(s) of a trial at a time; a trial's score is the mean over its folds", k,
             prepared.data.rows("train") + prepared.data.rows("validation"), at_once)
    return data, at_once


def trial_epoch_budget(cfg: Config) -> int:
    """The epochs a trial trains when no scheduler stops it."""
    s = cfg.search
    if s.scheduler != "fifo" and s.pruning.max_epochs:
        return s.pruning.max_epochs
    return s.trial_epochs or cfg.training.epochs


def _scheduler(cfg: Config, metric: str, mode: str, max_epochs: int,
               restored: list[TrialRecord]):
    """The search's scheduler, with the rung table of a resumed search's recorded trials."""
    from .schedulers import make_scheduler

    s = cfg.search
    if s.scheduler != "fifo" and s.pruning.min_epochs >= max_epochs:
        raise ConfigError(f"search.pruning.min_epochs ({s.pruning.min_epochs}) leaves the "
                          f"{s.scheduler} scheduler nothing to stop: trials train {max_epochs} "
                          "epochs; lower min_epochs or raise search.pruning.max_epochs")
    scheduler = make_scheduler(s.scheduler, s.pruning, mode, max_epochs, metric)
    for r in restored:  # in trial order, as they ran: the same rungs again
        for epoch, value in enumerate(r.curve, start=1):
            scheduler.report(f"trial-{r.number}", epoch, float("nan") if value is None
                             else value)
        scheduler.complete(f"trial-{r.number}")
    return scheduler


def _design_choice(design, space: SearchSpace, monitor: Monitor) -> TrialRecord | None:
    """The trial of the design's result (pyramid: the network it kept, which need not be the
    best trial it ran); None while the design is unfinished."""
    from .algorithms.staged import outcomes_of_records

    results = outcomes_of_records(space, list(monitor.records.values()))
    plan = design.walk(lambda vals: results.get(space.vals_key(vals)))
    if not plan.done or plan.result is None:
        return None
    outcome = results.get(space.vals_key(plan.result))
    if outcome is None or outcome.trial is None or outcome.loss is None:
        return None
    log.info("tune: %s chose trial %d (%s)", design.name, outcome.trial + 1,
             plan.note or "its winner")
    return monitor.records[outcome.trial]


def _replay_or_fail(cfg: Config, journal: Journal, parent_id: str) -> None:
    """Write the trial records kept while MLflow was away; a server still away ends the run
    (exit 1) with where they are and how to go on."""
    from ..tracking.uri import redact, tracking_uri

    left = journal.replay(cfg.mlflow, parent_id)
    if left:
        raise FatalError(
            f"the MLflow tracking server at {redact(tracking_uri(cfg.mlflow))} is unreachable: "
            f"{left} finished trial(s) are kept in {journal.folder}; run the same command "
            "again once the server is back: it records them, then finishes the search")


def _report(cfg: Config, parent_id: str) -> str | None:
    """The report's HTML path; a failure to draw it never fails a finished search."""
    from ..reporting import report

    out = os.path.join(cfg.search.output_dir, cfg.search.name, "report")
    try:
        return report(cfg.mlflow, parent_id, out)["report.html"]
    except Exception as exc:
        log.warning("tune: could not write the report (%s: %s); retry with: sparkdl-tune "
                    "report %s", type(exc).__name__, exc, cfg.search.name)
        return None


def _best_or_fail(monitor: Monitor) -> TrialRecord:
    best = monitor.best
    if best is not None:
        return best
    reasons: dict[str, int] = {}
    for r in monitor.failures:
        reasons[r.failure or "unknown"] = reasons.get(r.failure or "unknown", 0) + 1
    listed = "; ".join(f"{n}x {why}" for why, n in sorted(reasons.items(), key=lambda x: -x[1]))
    raise FatalError(f"all {len(monitor.records)} trials failed: {listed or 'no trial ran'}")


def space_description(space: SearchSpace) -> dict[str, str]:
    return {d.name: d.kind for d in space.dimensions}


def _summary(cfg, monitor: Monitor, best: TrialRecord, final, exec_mode, metric, mode,
             started) -> dict[str, Any]:
    return {
        "search": cfg.search.name, "algorithm": cfg.search.algorithm,
        "execution_mode": exec_mode, "metric": metric, "mode": mode,
        "max_trials": cfg.search.max_trials,  # the budget now (after search.resume=extend)
        "trials": len(monitor.finished), "failed": len(monitor.failures),
        "cancelled": len(monitor.records) - len(monitor.finished),
        "scheduler": cfg.search.scheduler, "pruned": len(monitor.pruned),
        "epochs_spent": monitor.epochs_spent,
        "pruned_trials": [{"trial": r.number + 1, "epoch": r.pruned_epoch, "score": r.score,
                           "rung": r.rung, "why": r.pruned_reason}
                          for r in sorted(monitor.pruned, key=lambda r: r.number)],
        "stopped_early": monitor.stop_reason,
        "best_trial": best.number + 1, f"best_{metric}": best.score,
        "best_params": best.params, "final": final,
        **({"cv": cv_summary(cfg.search.cv_folds, monitor, best)} if cfg.search.cv_folds
           else {}),
        "parent_run_id": monitor.parent_run_id,
        "wall_seconds": round(time.monotonic() - started, 1),
    }


def cv_summary(k: int, monitor: Monitor, best: TrialRecord) -> dict[str, Any]:
    """``search.cv_folds``: each finished trial's mean ± std over its folds and their scores."""
    metric = monitor.metric

    def of(r: TrialRecord) -> dict[str, Any]:
        return {"trial": r.number + 1, "mean": r.extra.get(f"cv_mean_{metric}"),
                "std": r.extra.get(f"cv_std_{metric}"),
                "folds": [r.extra.get(f"cv_fold_{i}_{metric}") for i in range(1, k + 1)]}

    trials = [of(r) for r in sorted(monitor.records.values(), key=lambda r: r.number) if r.ok]
    return {"folds": k, "metric": metric, "best": of(best), "trials": trials}


def _study(cfg: Config, space: SearchSpace, monitor: Monitor, best: TrialRecord,
           final: dict[str, Any] | None, design=None,
           base: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the search's designs add to the summary and the report (``study.json``): one
    key per design in use (``sweep``, ``pyramid``, ``pareto``, ``baseline``)."""
    study: dict[str, Any] = {**pareto.study_of(cfg.search, monitor)}
    if design is not None:
        from .algorithms.staged import describe

        record = describe(design, space, list(monitor.records.values()),
                          label_name="units" if design.name == "pyramid" else "value")
        record["metric"] = monitor.metric
        record["trial_epochs"] = trial_epoch_budget(cfg)
        if final:
            record["confirmed"] = {"trial": best.number + 1, "epochs": final.get("epochs"),
                                   "test_metrics": final.get("test_metrics")}
        study[design.name] = record
    if base is not None:
        gain = baseline.study_of(base, baseline.overrides(cfg.search.baseline), best.score,
                                 final, monitor.metric, monitor.mode)
        drops = gain["relative_error_drop"]
        log.info("tune: relative error drop against the baseline (%s %s): %s",
                 monitor.metric, logs.number(base["score"]),
                 ", ".join(f"{k} {v:.1%}" for k, v in drops.items() if v is not None) or "n/a")
        study["baseline"] = gain
    return study


def _finished_summary(cfg: Config, parent) -> dict[str, Any]:
    path = os.path.join(cfg.search.output_dir, cfg.search.name, "summary.json")
    if os.path.isfile(path):
        with open(path) as f:
            return {**json.load(f), "already_finished": True}
    return {"search": cfg.search.name, "parent_run_id": parent.info.run_id,
            "already_finished": True}


def _write_outputs(cfg: Config, summary: dict[str, Any], best: TrialRecord) -> None:
    from ..files import write_json_atomic

    out = os.path.join(cfg.search.output_dir, cfg.search.name)
    write_json_atomic(os.path.join(out, "best_params.json"),
                      json.dumps(best.params, indent=2, default=str) + "\n")
    write_json_atomic(os.path.join(out, "summary.json"),
                      json.dumps(summary, indent=2, default=str) + "\n")
    log.info("tune: wrote %s/best_params.json and summary.json", out)
