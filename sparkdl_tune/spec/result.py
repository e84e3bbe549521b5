"""What one training returns to the driver: plain data, picklable, no TensorFlow objects.

Rank 0 fills it in the executor; the driver logs it to MLflow and rebuilds the model from
``model_json`` + ``weights`` with :func:`sparkdl_tune.executor.models.rebuild` (so no shared
file system is needed between them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainResult:
    """Outcome of one training (one trial, or one ``train`` run).

    Attributes:
        history: Per-epoch metrics as Keras names them (``loss``, ``accuracy``, ``val_loss``,
            ``val_accuracy``, ``lr``...), averaged over ranks; one value per epoch run.
        test_metrics: Metrics on the test split, keys prefixed ``test_`` (``test_loss``...).
        epochs_run: Epochs actually run (early stopping may end before the budget).
        wall_seconds: Time of the fit + evaluate on rank 0.
        samples_per_second: Training samples per second over all ranks, epochs 2+ when
            there were at least two epochs (the first includes warm-up).
        num_proc: Horovod ranks (1 = in-process, no Horovod).
        learning_rate: The learning rate actually used (after scaling by ranks).
        input_dim: Features per row, the model's input width.
        model_json: ``model.to_json()`` of the trained network.
        weights: ``model.get_weights()`` (numpy arrays); empty for a search trial, whose
            weights nobody reads (``TrainJob.weights``).
        extra: Anything else worth recording (device placement, thread settings, ...);
            always ``params`` (the model's parameter count), ``epoch_seconds`` (mean seconds
            per epoch, epochs 2+ when there were two) and ``latency_ms`` (prediction latency
            per row on rank 0): a search's possible second objectives.
    """

    history: dict[str, list[float]]
    test_metrics: dict[str, float]
    epochs_run: int
    wall_seconds: float
    samples_per_second: float
    num_proc: int
    learning_rate: float
    input_dim: int
    model_json: str
    weights: list[Any] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
