"""Executor side: one training, on one rank. No pyspark import; TensorFlow only inside ``run``.

``run(job)`` is what every rank runs — shipped by ``horovod.spark.run``, started by a barrier
task (:mod:`sparkdl_tune.executor.barrier`), or called in-process when ``num_proc == 1``: pin the
GPU Spark assigned, join the other ranks through the job's backend
(:mod:`sparkdl_tune.executor.backends`), stream this rank's shard into ``tf.data``
(:mod:`sparkdl_tune.executor.stream`), fit, evaluate on ``test`` (rank 0), and hand back plain
data. Engine-neutral: what differs between engines is the backend's. Only rank 0 returns a
:class:`TrainResult`; every rank returns a :class:`RankReport`.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
from typing import Any, Optional

from ..spec.job import RankReport, TrainJob
from ..spec.result import TrainResult
from .backends import make_backend, pin_assigned_gpus
from .stream import stream


def run(job: TrainJob, backend=None) -> tuple[RankReport, Optional[TrainResult]]:
    """Train on this rank; see the module docstring. A rank of a multi-rank job says how it
    ended (:mod:`sparkdl_tune.spec.outcome`), so the driver can blame the right rank.
    ``backend``: one already started by an earlier job of this process (warm ranks,
    :mod:`sparkdl_tune.executor.warm_ranks`); default a new one."""
    backend = backend or make_backend(job)
    if job.num_proc == 1 or not backend.announces:
        return _train(job, backend)
    from ..spec import outcome

    try:
        ended = _train(job, backend)
    except BaseException as exc:
        outcome.announce(exc, backend.is_consequence(exc))
        raise
    outcome.announce()
    return ended


def _train(job: TrainJob, backend) -> tuple[RankReport, Optional[TrainResult]]:
    gpus = [] if job.in_process else pin_assigned_gpus(backend)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .. import logs

    logs.quiet_libraries()
    import tensorflow as tf

    _set_threads(tf, job.threads)
    backend.start()
    rank, size = backend.rank, backend.size
    report = RankReport(rank=rank, size=size, host=socket.gethostname(), pid=os.getpid(),
                        gpus=gpus, cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    tf.keras.utils.set_random_seed(job.seed + rank)

    from .models import build_model, make_callbacks

    training = job.training
    lr = training.rate * (size if job.scale_learning_rate else 1)
    train_rows = job.data.rows("train")
    steps = max(1, train_rows // (training.batch_size * size))
    with backend.scope():
        model = build_model(job.model, training, job.data.input_dim, job.data.num_classes,
                            learning_rate=lr, seed=job.seed,
                            wrap_optimizer=backend.wrap_optimizer(),
                            total_steps=steps * training.epochs)
    timer = _EpochTimer(tf)
    callbacks: list[Any] = [*backend.callbacks(), timer, tf.keras.callbacks.TerminateOnNaN(),
                            *make_callbacks(training)]
    if training.time_limit_minutes:
        callbacks.append(_TimeLimit(tf, training.time_limit_minutes * 60, timer, backend))
    # no validation split (a final model trained on train+validation): no val_* metrics
    validate = "validation" in job.data.splits
    unfreezing = _unfreezing(tf, job, model, lr, backend, steps, validate)
    if unfreezing is not None:
        callbacks.append(unfreezing)
    reports = None
    if job.report_to is not None:  # last: it reports what the others made of the epoch
        from .reporter import epoch_callback

        reports = epoch_callback(tf, job.report_to, backend)
        callbacks.append(reports)

    started = time.monotonic()
    with stream(job, "train", rank, size) as (train_ds, cached), \
            (stream(job, "validation", rank, size, per_pass=True) if validate
             else contextlib.nullcontext((None, False))) as (val_ds, _):
        report.cached_in_memory = cached
        history = model.fit(backend.distribute(train_ds, steps), epochs=training.epochs,
                            steps_per_epoch=steps, validation_data=backend.distribute(val_ds),
                            callbacks=callbacks, verbose=job.verbose if rank == 0 else 0)
    if rank != 0:
        backend.finish(tf)
        return report, None
    model = backend.local_model(tf, model)
    pruned = reports.pruned if reports is not None else None
    scores, evaluation = {}, None
    if pruned is None and job.test:  # a pruned trial's test score would tell nobody anything
        with stream(job, "test", 0, 1, finite=True) as (test_ds, _):
            scores = model.evaluate(test_ds, verbose=0, return_dict=True)
        if job.report_to is None:  # a train run or the final model, not a trial: the details
            scores, evaluation = _evaluate(job, model, scores)
    wall = time.monotonic() - started
    per_epoch = timer.seconds[1:] or timer.seconds
    samples = steps * training.batch_size * size
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    backend.finish(tf)
    return report, TrainResult(
        history=hist,
        test_metrics={f"test_{k}": float(v) for k, v in scores.items()},
        epochs_run=len(timer.seconds),
        wall_seconds=wall,
        samples_per_second=samples / (sum(per_epoch) / len(per_epoch)) if per_epoch else 0.0,
        num_proc=size,
        learning_rate=lr,
        input_dim=job.data.input_dim,
        model_json=model.to_json(),
        weights=model.get_weights() if job.weights else [],
        extra={"epoch_times": timer.seconds, "threads_per_proc": job.threads,
               # what a second search objective can be (sparkdl_tune.search.pareto)
               "params": int(model.count_params()),
               "epoch_seconds": sum(per_epoch) / len(per_epoch) if per_epoch else None,
               "latency_ms": _latency_ms(model),
               "nan_loss": not all(math.isfinite(v) for v in hist.get("loss", [])),
               "cached_in_memory": cached, "pruned": list(pruned) if pruned else None,
               "unfreezing": unfreezing.steps if unfreezing is not None else None,
               "evaluation": evaluation},
    )


def _unfreezing(tf, job: TrainJob, model, lr: float, backend, steps: int, validate: bool):
    """The progressive-unfreezing callback of a ``model.backbone`` in that mode, else None."""
    spec = job.model.backbone
    if spec is None or spec.mode != "progressive":
        return None
    from ..keras_compat import retrace_train_step
    from .compilation import compile_model, resolve_head, resolve_metrics, resolve_num_classes
    from .unfreezing import callback

    training = job.training
    head = resolve_head(job.model, training, resolve_num_classes(job.model, job.data.num_classes))
    metrics = resolve_metrics(job.model, training, head)
    wrap = backend.wrap_optimizer()

    def recompile(rate: float) -> None:
        with backend.scope():
            compile_model(tf, model, training, head, metrics, rate,
                          total_steps=steps * training.epochs, wrap_optimizer=wrap)
        retrace_train_step(model, backend.scope)

    return callback(tf, spec, model, lr, recompile, backend, validate)


def _evaluate(job: TrainJob, model, scores: dict) -> tuple[dict, dict]:
    """Keras' test scores plus those of :mod:`sparkdl_tune.executor.evaluation` (R², RMSE and a
    mean-prediction baseline; per-class scores), and the details (confusion matrix...)."""
    from . import evaluation
    from .compilation import resolve_num_classes

    task = job.model.task
    classes = None if task == "regression" else resolve_num_classes(job.model,
                                                                    job.data.num_classes)
    with stream(job, "test", 0, 1, finite=True) as (test_ds, _):
        extra, details = evaluation.evaluate(model, test_ds, task, classes,
                                             job.data.splits["train"].files,
                                             job.data.class_names)
    return {**extra, **scores}, details  # Keras' own values win where both have a name


class _EpochTimer:
    """A Keras callback recording each epoch's wall time (built lazily: no TF at import)."""

    def __new__(cls, tf):
        class Timer(tf.keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):
                self._t = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.monotonic() - self._t)

        return Timer()


class _TimeLimit:
    """A Keras callback ending ``fit`` after the epoch that leaves less time than the longest
    epoch so far took (built lazily: no TF at import). With several ranks every rank takes the
    same decision (stop when any rank asks), so no rank waits on a stopped one.
    """

    def __new__(cls, tf, seconds: float, timer, backend):
        class TimeLimit(tf.keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self._started = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                left = seconds - (time.monotonic() - self._started)
                stop = backend.any(tf, left < max(timer.seconds, default=0.0), "time_limit")
                if stop:
                    self.model.stop_training = True
                    self.stopped_epoch = epoch + 1

        return TimeLimit()


LATENCY_ROWS, LATENCY_REPEATS = 256, 5


def _latency_ms(model) -> Optional[float]:
    """Prediction latency per row in ms: the median of a few ``predict_on_batch`` calls on one
    batch of 256 rows (after one warm-up call), divided by the rows. The rows are zeros of the
    model's input shape: a dense or convolutional network does the same work whatever the
    values, and no data has to be streamed again. Well under a second for the models tuned
    here; None when the model cannot be timed this way."""
    import numpy as np

    try:
        x = np.zeros((LATENCY_ROWS, *model.input_shape[1:]), dtype="float32")
        model.predict_on_batch(x)
        times = []
        for _ in range(LATENCY_REPEATS):
            started = time.perf_counter()
            model.predict_on_batch(x)
            times.append(time.perf_counter() - started)
    except Exception:  # an unusual input signature: no latency, the trial stands
        return None
    return float(np.median(times)) / LATENCY_ROWS * 1000.0


def _set_threads(tf, threads: int) -> None:
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already initialised in this process (in-process runs)
        pass
