"""The ``train`` workflow: one config -> one model -> distributed training -> MLflow run.

Driver side. Every check that can fail on the user's input (config, dataset, slots) runs
before any training starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

from .. import logs
from ..config.loader import as_flat_dict
from ..config.schema import Config
from ..errors import ConfigError, TrialFailed, public
from ..spec.result import TrainResult

log = logs.get("train")


@dataclass
class Prepared:
    """What a training needs that is shared across trials: the session and the data handle."""

    spark: Any
    data: Any  # sparkdl_tune.spec.data.TrainingData
    manifest: Any  # dataset.Manifest


def prepare_inputs(cfg: Config, spark=None) -> Prepared:
    """Validate the dataset against the config and materialise it for Petastorm (once)."""
    from . import backbone
    from .builder import check_and_ship
    from .launch import check_slots
    from .materialise import training_data
    from .session import get_spark
    from .validation import validate_dataset

    spark = spark or get_spark(cfg.spark)
    check_and_ship(cfg.model.builder, spark)  # ConfigError before any data work or training
    backbone.check_and_ship(cfg.model.backbone, spark)
    manifest = validate_dataset(spark, cfg.data.path, stamp_dir=_stamp_dir(cfg))
    check_task(cfg, manifest)
    if cfg.execution.num_proc > 1:
        check_slots(spark, cfg.execution.num_proc)
    data = training_data(spark, cfg.data, manifest, min_files=max(2, cfg.execution.num_proc))
    return Prepared(spark=spark, data=data, manifest=manifest)


def _stamp_dir(cfg: Config) -> Optional[str]:
    from .materialise import cache_root

    root = cache_root(cfg.data)
    return root[len("file://"):] + "/validated" if root.startswith("file://") else None


def check_writable(cfg: Config, search: bool = False) -> None:
    """Every local place a train (with ``search``: a search) will write can be written: the
    data cache, the MLflow store, the search's output folder. Asked before Spark starts, so
    a folder that is a file ends the command in a second, not after the last trial."""
    import os

    from ..config.writable import check_folder
    from ..tracking.uri import check_writable as check_store
    from .materialise import check_cache

    if search:
        check_folder("search.output_dir", os.path.join(cfg.search.output_dir, cfg.search.name),
                     "search's output folder")
    check_cache(cfg.data)
    check_store(cfg.mlflow)


def check_installed(cfg: Config) -> None:
    """The chosen reader, and the engine of a multi-rank training, can be imported here: a
    ``horovod`` named on a platform without Horovod ends the command before Spark starts."""
    from ..spec import engines, readers

    wanted = [("data.reader", cfg.data.reader, readers.READERS)]
    if cfg.execution.num_proc > 1:
        wanted.append(("execution.backend", cfg.execution.backend, engines.ENGINES))
    for key, name, registry in wanted:
        why = engines.unusable(registry[name])
        if why:
            raise ConfigError(f"{key} is {name!r} but {why}; set {key}=auto (here: "
                              f"{engines.first_installed(registry, key)}) or install "
                              f"{registry[name].library}")


def check_task(cfg: Config, manifest) -> None:
    if cfg.model.task != manifest.layout.task:
        raise ConfigError(f"model.task is {cfg.model.task!r} but the dataset at "
                          f"{cfg.data.path} is for {manifest.layout.task}; set "
                          f"model.task={manifest.layout.task}")


def make_job(cfg: Config, data, threads: int, verbose: int = 2, trial: bool = False):
    """The picklable job one training ships to its ranks. A search ``trial`` evaluates on test
    only with ``search.trial_test`` (nothing in the search reads a trial's test scores: trials
    are compared on validation, the final retrain is evaluated on test) and ships no weights
    back (the final retrain trains its own)."""
    from ..spec.job import TrainJob

    ex = cfg.execution
    if hasattr(data, "select"):  # the trial's feature columns, read from the one full copy
        data = data.select(cfg.data.feature_columns)
    return TrainJob(
        model=cfg.model, training=cfg.training, data=data, num_proc=ex.num_proc,
        backend=ex.backend,
        scale_learning_rate=ex.scale_learning_rate, threads=threads, seed=ex.seed,
        reader=cfg.data.reader, reader_workers=cfg.data.reader_workers,
        shuffle=cfg.data.shuffle,
        in_memory_cache=cfg.data.in_memory_cache, cache_max_mb=cfg.data.cache_max_mb,
        verbose=verbose, test=not trial or cfg.search.trial_test, weights=not trial)


def fit(cfg: Config, prepared: Prepared, verbose: int = 2, data=None) -> TrainResult:
    """Train once with ``cfg`` (on ``data``, default the prepared splits); a NaN loss is a
    :class:`TrialFailed`."""
    from .launch import threads_per_proc
    from .launch import train as launch_train

    threads = threads_per_proc(prepared.spark, cfg.execution.num_proc,
                               cfg.execution.threads_per_proc)
    job = make_job(cfg, data or prepared.data, threads, verbose)
    result = launch_train(prepared.spark, job, start_timeout=cfg.execution.start_timeout)
    check_finite(result)
    return result


def check_finite(result: TrainResult) -> None:
    if result.extra.get("nan_loss"):
        raise TrialFailed(f"NaN loss after {result.epochs_run} epochs (learning rate "
                          f"{result.learning_rate:g}); lower training.learning_rate")


@public
def train(cfg: Config, spark=None, run_name: Optional[str] = None) -> dict[str, Any]:
    """Train, evaluate on ``test`` and record an MLflow run; returns a summary dict.

    Args:
        cfg: The full configuration.
        spark: A SparkSession; made from ``cfg.spark`` when omitted.
        run_name: MLflow run name (default ``train-<architecture>``).
    """
    from ..executor.models import rebuild
    from ..tracking import store as tracking
    from ..tracking.model import log_training
    from ..tracking.results import usage_of

    started = time.monotonic()
    check_writable(cfg)  # before the store is created and Spark starts
    check_installed(cfg)
    where = tracking.setup(cfg.mlflow)  # a wrong tracking URI fails before the data is read
    prepared = prepare_inputs(cfg, spark)
    name = run_name or f"train-{cfg.model.architecture}"
    with tracking.start_run(cfg.mlflow, name) as run:
        try:
            result = fit(cfg, prepared)
        except Exception as exc:
            tracking.log_failure(str(exc).splitlines()[0] if str(exc) else repr(exc))
            raise
        params = {**as_flat_dict(cfg), "data.input_dim": prepared.data.input_dim,
                  "data.train_rows": prepared.data.rows("train")}
        info = log_training(result, rebuild(result), params,
                            register_name=cfg.mlflow.registered_model_name)
    summary = {
        "run_id": run.info.run_id,
        "model_uri": info["model_uri"],
        "registered_version": info.get("registered_version"),
        "test_metrics": result.test_metrics,
        "epochs_run": result.epochs_run,
        "num_proc": result.num_proc,
        "samples_per_second": round(result.samples_per_second, 1),
        "wall_seconds": round(time.monotonic() - started, 1),
        "tracking_uri": where,
        "evaluation": result.extra.get("evaluation"),  # per-class scores, baseline...
        "model": usage_of(cfg.mlflow, info, cfg.model.task),  # name, URI, snippet
    }
    log.info("train: done, %s -> run %s", _fmt(result.test_metrics), run.info.run_id)
    return summary


def _fmt(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
