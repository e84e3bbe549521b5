"""Executor side: one training, on one rank. No pyspark import; TensorFlow only inside ``run``.

``run(job)`` is what ``horovod.spark.run`` ships to every Spark task (or what the driver calls
in-process when ``num_proc == 1``): pin the GPU Spark assigned, start Horovod, stream this rank's
shard from Petastorm into ``tf.data``, fit, evaluate on ``test`` (rank 0), and hand back plain
data. Only rank 0 returns a :class:`TrainResult`; every rank returns a :class:`RankReport`.
"""

from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from .data import TrainingData
from .model_spec import ModelSpec, TrainingSpec
from .result import TrainResult


@dataclass(frozen=True)
class TrainJob:
    """Everything a rank needs, picklable and small (the data travels as file URLs)."""

    model: ModelSpec
    training: TrainingSpec
    data: TrainingData
    num_proc: int = 1
    scale_learning_rate: bool = True
    threads: int = 2
    seed: int = 42
    reader_workers: int = 2
    shuffle: bool = True
    in_memory_cache: str = "auto"
    cache_max_mb: int = 2048
    in_process: bool = True
    verbose: int = 2


@dataclass
class RankReport:
    """What each rank saw: for logs and for checking GPU assignment."""

    rank: int
    size: int
    host: str
    pid: int
    gpus: list[str] = field(default_factory=list)
    cuda_visible_devices: Optional[str] = None
    cached_in_memory: bool = False


def run(job: TrainJob) -> tuple[RankReport, Optional[TrainResult]]:
    """Train on this rank; see the module docstring."""
    gpus = [] if job.in_process else _pin_assigned_gpus()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from . import logs

    logs.quiet_libraries()
    import tensorflow as tf

    _set_threads(tf, job.threads)
    hvd = None
    rank, size = 0, 1
    if job.num_proc > 1:
        import horovod.tensorflow.keras as hvd

        hvd.init()
        rank, size = hvd.rank(), hvd.size()
    report = RankReport(rank=rank, size=size, host=socket.gethostname(), pid=os.getpid(),
                        gpus=gpus, cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    tf.keras.utils.set_random_seed(job.seed + rank)

    from .models import build_model, make_callbacks

    training = job.training
    lr = training.learning_rate * (size if job.scale_learning_rate else 1)
    model = build_model(job.model, training, job.data.input_dim, job.data.num_classes,
                        learning_rate=lr, seed=job.seed,
                        wrap_optimizer=hvd.DistributedOptimizer if hvd else None)
    train_rows = job.data.rows("train")
    steps = max(1, train_rows // (training.batch_size * size))
    val_steps = max(1, job.data.rows("validation") // (training.batch_size * size))
    timer = _EpochTimer(tf)
    callbacks: list[Any] = []
    if hvd:
        callbacks += [hvd.callbacks.BroadcastGlobalVariablesCallback(0),
                      hvd.callbacks.MetricAverageCallback()]
    callbacks += [timer, tf.keras.callbacks.TerminateOnNaN(), *make_callbacks(training)]

    started = time.monotonic()
    with _stream(job, "train", rank, size) as (train_ds, cached), \
            _stream(job, "validation", rank, size) as (val_ds, _):
        report.cached_in_memory = cached
        history = model.fit(train_ds, epochs=training.epochs, steps_per_epoch=steps,
                            validation_data=val_ds, validation_steps=val_steps,
                            callbacks=callbacks, verbose=job.verbose if rank == 0 else 0)
    if rank != 0:
        return report, None
    with _stream(job, "test", 0, 1, finite=True) as (test_ds, _):
        scores = model.evaluate(test_ds, verbose=0, return_dict=True)
    wall = time.monotonic() - started
    per_epoch = timer.seconds[1:] or timer.seconds
    samples = steps * training.batch_size * size
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
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
        weights=model.get_weights(),
        extra={"epoch_seconds": timer.seconds, "threads_per_proc": job.threads,
               "nan_loss": not all(math.isfinite(v) for v in hist.get("loss", [])),
               "cached_in_memory": cached},
    )


class _stream:
    """Context manager: this rank's shard of one split as ``tf.data`` of (x, y) batches.

    Petastorm yields whole row groups; each is shuffled in place and re-cut to the batch size
    with ``rebatch`` (no per-row work in Python). When the shard fits the memory budget the
    decoded row groups are cached after the first pass.
    """

    def __init__(self, job: TrainJob, split: str, rank: int, size: int, finite: bool = False):
        self.job, self.split, self.rank, self.size, self.finite = job, split, rank, size, finite

    def __enter__(self):
        import tensorflow as tf
        from petastorm import make_batch_reader
        from petastorm.tf_utils import make_petastorm_dataset

        job = self.job
        converter = job.data.converters[self.split]
        shard_bytes = len(converter) / self.size * (job.data.input_dim + 1) * 4
        cached = not self.finite and _use_memory_cache(job, shard_bytes)
        shuffle = job.shuffle and self.split == "train"
        self.reader = make_batch_reader(
            converter.file_urls, num_epochs=1 if (cached or self.finite) else None,
            workers_count=job.reader_workers, shuffle_row_groups=shuffle,
            seed=job.seed + self.rank if shuffle else None,
            cur_shard=self.rank if self.size > 1 else None,
            shard_count=self.size if self.size > 1 else None)
        ds = make_petastorm_dataset(self.reader).map(
            lambda b: (b.features, b.label), num_parallel_calls=tf.data.AUTOTUNE)
        if cached:
            ds = ds.cache().repeat()
            if shuffle:
                ds = ds.shuffle(64, seed=job.seed + self.rank)
        if shuffle:
            ds = ds.map(_permute_rows, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.rebatch(job.training.batch_size).prefetch(tf.data.AUTOTUNE)
        return ds, cached

    def __exit__(self, *exc):
        self.reader.stop()
        self.reader.join()


def _permute_rows(x, y):
    import tensorflow as tf

    idx = tf.random.shuffle(tf.range(tf.shape(y)[0]))
    return tf.gather(x, idx), tf.gather(y, idx)


def _use_memory_cache(job: TrainJob, shard_bytes: float) -> bool:
    if job.in_memory_cache == "off":
        return False
    if job.in_memory_cache == "on":
        return True
    budget = job.cache_max_mb * 2**20
    try:
        import psutil

        budget = min(budget, psutil.virtual_memory().available / 4 / max(1, job.num_proc))
    except ImportError:
        pass
    return shard_bytes <= budget


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


def _set_threads(tf, threads: int) -> None:
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already initialised in this process (in-process runs)
        pass


def _pin_assigned_gpus() -> list[str]:
    """Make only the GPUs Spark assigned to this task visible, before TensorFlow starts."""
    gpus: list[str] = []
    try:
        from horovod.spark.task import get_available_devices

        gpus = list(get_available_devices())
    except Exception:  # not inside a horovod.spark task
        gpus = []
    if not gpus:
        try:
            from pyspark import TaskContext

            ctx = TaskContext.get()
            if ctx is not None and "gpu" in ctx.resources():
                gpus = list(ctx.resources()["gpu"].addresses)
        except Exception:
            gpus = []
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    return gpus
