"""TensorFlow's MultiWorkerMirroredStrategy as the backend of a multi-rank training
(``execution.backend: tf_distribute``; see :mod:`.single` for the interface).

The ranks are the children of a Spark barrier stage (:mod:`sparkdl_tune.executor.barrier`),
which hands each its peers, rank and GPUs in the environment; :meth:`start` turns them into
``TF_CONFIG`` and the strategy (RING collectives), before any other TensorFlow op. What Horovod
does with callbacks the strategy does itself: variables start from the same values on every
worker, gradients are all-reduced each step, and metrics are aggregated across workers (exact
global values, not an average of averages). Each worker feeds its own shard (per-worker batch
``training.batch_size``, as with Horovod), so ``fit`` gets it through
``distribute_datasets_from_function`` with no resharding.

Keras 2 (TensorFlow <= 2.15, and ``tf-keras``) trains with ``model.fit`` under the strategy as
shipped. Keras 3's ``fit`` fails under this strategy with more than one worker
(keras-team/keras#20585); :func:`mend_keras3_fit` mends it in two places, under Keras 3 only, so
both profiles run the same ``fit`` with the same callbacks.
"""

from __future__ import annotations

import json
import os
import re

from .single import Backend

# Errors a worker gets because a peer went away (collectives aborted, peer unreachable).
CONSEQUENCE = re.compile(
    r"UnavailableError|CancelledError|Collective ops is aborted|collective.*abort|"
    r"failed to connect to all addresses|Socket closed|Connection reset by peer|"
    r"peer.*(unreachable|unavailable|down)", re.IGNORECASE)


class TFDistributeBackend(Backend):
    name = "tf_distribute"

    def assigned_gpus(self) -> list[str]:
        from ..barrier import GPUS

        return [g for g in os.environ.get(GPUS, "").split(",") if g]

    def start(self) -> None:
        if getattr(self, "strategy", None) is not None:  # a warm rank's next job: started
            return
        import tensorflow as tf

        from ..barrier import PEERS, RANK

        peers = json.loads(os.environ[PEERS])
        self.rank, self.size = int(os.environ[RANK]), len(peers)
        os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": peers},
                                              "task": {"type": "worker", "index": self.rank}})
        ring = tf.distribute.experimental.CommunicationImplementation.RING
        self.strategy = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=ring))
        from ...keras_compat import keras_major

        if keras_major() >= 3:
            mend_keras3_fit()

    def scope(self):
        return self.strategy.scope()

    def distribute(self, dataset, steps=None):
        if dataset is None:
            return None
        if steps is None:
            # A validation pass of unknown length: Keras distributes it itself, as the
            # rank's whole shard (no auto-sharding; each batch is re-cut across the workers'
            # steps, and the strategy ends the pass when every worker's data is out).
            import tensorflow as tf

            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.OFF)
            return dataset.with_options(options)
        return self.strategy.distribute_datasets_from_function(lambda context: dataset)

    def _sum(self, tf, value: float) -> float:
        per_replica = self.strategy.run(tf.identity, args=(tf.constant(float(value)),))
        return float(self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None))

    def any(self, tf, flag: bool, name: str) -> bool:
        return self._sum(tf, float(flag)) > 0

    def from_root(self, tf, flag: bool, name: str) -> bool:
        return self._sum(tf, float(flag) if self.rank == 0 else 0.0) > 0

    def local_model(self, tf, model):
        """A copy outside the strategy: rank 0 evaluates alone, and a distributed model's
        evaluate would wait for the other workers' collectives."""
        copy = tf.keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
        compiled = tf.keras.utils.deserialize_keras_object(model.get_compile_config())
        compiled.pop("optimizer", None)  # evaluation needs the loss and metrics only
        copy.compile(**compiled)
        return copy

    def finish(self, tf) -> None:
        # Every worker stays up until rank 0 has evaluated: the strategy's health checks
        # would otherwise see a peer gone.
        self._sum(tf, 0.0)

    def is_consequence(self, exc: BaseException) -> bool:
        return bool(CONSEQUENCE.search(f"{type(exc).__name__}: {exc}"))


def mend_keras3_fit() -> None:
    """Make Keras 3's ``fit`` and ``evaluate`` work under MultiWorkerMirroredStrategy with
    several workers (keras-team/keras#20585, tensorflow/tensorflow#72388: open; checked on
    Keras 3.15.1 with TensorFlow 2.21.0). Under Keras 3 only: Keras 2 needs nothing. Patches
    ``keras.src.backend.tensorflow.trainer`` of this rank's process (a barrier task's own child,
    which trains nothing else); a second call does nothing.

    1. ``TensorFlowTrainer._maybe_symbolic_build`` builds the model from the first batch and,
       when that batch is distributed, averages it over the workers with one
       ``strategy.reduce("MEAN", batch)`` of the whole structure, which fails ("PerReplica ...
       to a Tensor"). Building needs only shapes and dtypes: it gets this worker's own part.
    2. ``reduce_per_replica(values, strategy, "mean")`` (each train/test step's logs) reduces
       the scalar metrics with ``axis=0`` across workers: "Invalid reduction dimension 0". A
       step's logs become this worker's own running values (no collective per step; only the
       chief's progress bar shows them). The epoch's logs — what history, the callbacks and the
       reporter get — are unchanged: Keras reads them from the metrics after the epoch, and
       their variables (sync on read, summed) add up every worker's totals, so ``loss`` and
       ``val_*`` are exact global values, as under Keras 2.
    """
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_sparkdl_tune_mended", False):
        return
    build, reduce = trainer.TensorFlowTrainer._maybe_symbolic_build, trainer.reduce_per_replica

    def several_workers(strategy) -> bool:
        return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
                and strategy.extended._in_multi_worker_mode())

    def own_part(strategy, values):
        return tree.map_structure(
            lambda v: (strategy.experimental_local_results(v)[0]
                       if isinstance(v, tf.distribute.DistributedValues) else v), values)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is not None and strategy is not None and several_workers(strategy):
            for _, _, batches in iterator:  # fit/evaluate reset the iterator afterwards
                data_batch = own_part(strategy, next(batches))
                break
            iterator = None
        return build(self, iterator=iterator, data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and several_workers(strategy):
            return own_part(strategy, values)
        return reduce(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica
    trainer._sparkdl_tune_mended = True
