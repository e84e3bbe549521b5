"""Distributed-training backends: what a rank needs from the engine that joins the ranks.

One module per engine (``single``, ``horovod``, ``tf_distribute``); the registry
(:mod:`sparkdl_tune.spec.engines`) says which class an ``execution.backend`` name means, so a
new engine is its module plus one registry line. :class:`~.single.Backend` is the interface.
:func:`pin_assigned_gpus` runs before TensorFlow starts: a rank sees only the GPUs Spark gave
its task (where the backend finds them: the Spark task, Horovod's task info, the barrier
task's environment).
"""

from __future__ import annotations

import os

from ...spec.engines import engine, resolve
from ...spec.job import TrainJob
from .single import Backend


def make_backend(job: TrainJob) -> Backend:
    """The backend of ``job``'s engine (the one-process backend for one rank)."""
    return resolve(engine(job.backend, job.num_proc).backend)()


def pin_assigned_gpus(backend: Backend) -> list[str]:
    """Make only the GPUs Spark assigned to this task visible, before TensorFlow starts."""
    gpus = backend.assigned_gpus()
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    return gpus
