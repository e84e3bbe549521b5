"""Progressive unfreezing of a backbone during one ``fit`` (``model.backbone.mode: progressive``).

A Keras callback: after an epoch in which ``backbone.monitor`` did not improve for ``patience``
epochs (or after the epochs of ``unfreeze_at``), the next ``unfreeze_layers`` blocks of the
backbone become trainable and the learning rate is multiplied by ``unfreeze_lr_factor``; until
``max_unfrozen`` blocks train, or the epochs run out. A change of what trains needs a new
compile; it is done inside ``fit`` (a fresh optimizer at the new rate, the train step retraced
by :func:`sparkdl_tune.keras_compat.retrace_train_step`), so every other callback (Horovod's,
per-epoch reports to the driver, time limits) sees one ``fit``. With several ranks every rank
takes rank 0's decision. Each epoch's logs gain ``backbone_unfrozen`` (blocks that trained in
it) and ``lr``; a search's final retrain reads the best trial's steps from them
(:func:`steps_of`).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from ..config.model_spec import BackboneSpec

#: Per-epoch log key: how many backbone blocks trained in that epoch.
UNFROZEN = "backbone_unfrozen"
_MAXIMISED = ("accuracy", "auc", "precision", "recall")


def steps_of(history: dict[str, Sequence[float]]) -> Optional[tuple[int, ...]]:
    """The epochs (1-based) after which a training unfroze blocks, from its history."""
    series = history.get(UNFROZEN)
    if not series:
        return None
    return tuple(i for i in range(1, len(series)) if series[i] > series[i - 1])


def callback(tf, spec: BackboneSpec, net, learning_rate: float, recompile: Callable[[float],
             None], backend, validated: bool):
    """The unfreezing callback for ``net`` (built by :mod:`sparkdl_tune.executor.backbone`).

    Args:
        learning_rate: The rate the model was compiled with.
        recompile: Compiles ``net`` again with a fresh optimizer at the given rate.
        validated: The fit has validation data; without it ``val_x`` monitors ``x``.
    """
    from .backbone import blocks, find_trunk, set_unfrozen

    trunk = find_trunk(net)
    total = len(blocks(trunk))
    limit = min(total, spec.max_unfrozen if spec.max_unfrozen is not None else total)
    monitor = spec.monitor
    if not validated and monitor.startswith("val_"):
        monitor = monitor[len("val_"):]
    maximise = any(word in monitor for word in _MAXIMISED)

    class ProgressiveUnfreezing(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.unfrozen = min(spec.trainable_layers, total)
            self.rate = learning_rate
            self.best: Optional[float] = None
            self.wait = 0
            self.steps: list[dict[str, Any]] = []

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs[UNFROZEN] = float(self.unfrozen)
                logs["lr"] = float(self.rate)
            if not backend.from_root(tf, self._due(epoch, logs or {}),
                                     f"sparkdl_tune_unfreeze_{epoch}"):
                return
            self.unfrozen = set_unfrozen(trunk, min(limit, self.unfrozen + spec.unfreeze_layers))
            self.rate *= spec.unfreeze_lr_factor
            self.wait = 0
            recompile(self.rate)
            self.steps.append({"epoch": epoch + 1, "unfrozen": self.unfrozen,
                               "learning_rate": self.rate})

        def _due(self, epoch: int, logs: dict) -> bool:
            if self.unfrozen >= limit:
                return False
            if spec.unfreeze_at is not None:
                return epoch + 1 in spec.unfreeze_at
            value = logs.get(monitor)
            if value is None:
                return False
            value = float(value)
            better = self.best is None or (value > self.best + spec.min_delta if maximise
                                           else value < self.best - spec.min_delta)
            if better:
                self.best, self.wait = value, 0
                return spec.patience == 0
            self.wait += 1
            return self.wait >= spec.patience

    return ProgressiveUnfreezing()
