"""What model to build and how to train it: the ``model`` and ``training`` config sections.

Plain frozen dataclasses with no TensorFlow import; :mod:`sparkdl_tune.config.loader` fills them
from YAML and :func:`sparkdl_tune.executor.models.build_model` turns them into a compiled Keras
model. Every name choice is a ``Literal``, so a typo fails at config load with the valid names
and the closest one. Checks that need the data (number of classes, number of features) happen at
build time in :mod:`sparkdl_tune.executor.models`.

The defaults are a Fashion-MNIST MLP: 784 -> 256 -> 128 -> 10, relu, glorot_uniform, Adam 1e-3,
batch 128, 3 epochs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

Task = Literal["classification", "regression"]
Architecture = Literal["mlp", "cnn1d", "cnn2d", "cnn3d"]
Shape = Literal["constant", "pyramid", "funnel"]
Activation = Literal[
    "relu", "elu", "selu", "softplus", "softsign", "tanh", "sigmoid", "hard_sigmoid",
    "linear", "swish", "gelu",
]
Initializer = Literal[
    "zeros", "ones", "random_normal", "random_uniform", "truncated_normal", "orthogonal",
    "lecun_normal", "lecun_uniform", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
]
Padding = Literal["valid", "same"]
Pooling = Literal["max", "avg", "none"]
Optimizer = Literal["sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamax", "nadam"]
Schedule = Literal["constant", "cosine"]
Loss = Literal[
    "auto", "sparse_categorical_crossentropy", "categorical_crossentropy",
    "binary_crossentropy", "mse", "mae", "huber",
]
Metric = Literal["auto", "accuracy", "auc", "precision", "recall", "mae", "mse", "rmse", "mape"]
BackboneMode = Literal["progressive", "frozen", "scratch"]
#: Keras Applications a backbone can name: (``tf.keras.applications`` class, smallest image side).
APPLICATIONS = {"mobilenet_v2": ("MobileNetV2", 32), "efficientnet_b0": ("EfficientNetB0", 32),
                "resnet50": ("ResNet50", 32)}

#: Spatial rank of each convolutional architecture (``input_shape`` adds one channel axis).
CONV_RANK = {"cnn1d": 1, "cnn2d": 2, "cnn3d": 3}
CLASSIFICATION_LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy",
                         "binary_crossentropy")
REGRESSION_LOSSES = ("mse", "mae", "huber")
CLASSIFICATION_METRICS = ("accuracy", "auc", "precision", "recall")
REGRESSION_METRICS = ("mae", "mse", "rmse", "mape")
#: Bounds far past any model trained here: past them ``dense_widths`` would build a tuple of
#: billions of widths (memory) or divide an integer too large for a float.
MAX_LAYERS = 10_000
MAX_UNITS = 2**31 - 1  # TensorFlow's shapes are int32
#: ``learning_rate: default`` per optimizer: the ``learning_rate`` default of each
#: ``tf.keras.optimizers`` class of the pinned Keras 2 (a test reads them from Keras itself).
KERAS_DEFAULT_RATES = {"sgd": 0.01, "adagrad": 0.001, "adadelta": 0.001, "rmsprop": 0.001,
                       "adam": 0.001, "adamax": 0.001, "nadam": 0.001}
#: Optimizers that take ``momentum``; only ``sgd`` takes ``nesterov``.
MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop")


def dense_widths(n_layers: int, layer_units: int, shape: Shape) -> tuple[int, ...]:
    """Widths of ``n_layers`` dense layers that start at ``layer_units``.

    * ``constant``: every layer has ``layer_units`` units (256, 256, 256, 256).
    * ``pyramid``: the width halves at each layer, never below 1 (256, 128, 64, 32).
    * ``funnel``: the width falls linearly from ``layer_units`` to a quarter of it at the
      last layer (256, 192, 128, 64); one layer keeps ``layer_units``.

    Args:
        n_layers: Number of hidden dense layers (0 for none).
        layer_units: Width of the first layer.
        shape: ``constant``, ``pyramid`` or ``funnel``.

    Returns:
        One width per layer.
    """
    if shape == "constant":
        return (layer_units,) * n_layers
    if shape == "pyramid":
        return tuple(max(1, layer_units >> i) for i in range(n_layers))
    if shape == "funnel":
        if n_layers == 1:
            return (layer_units,)
        last = layer_units / 4
        step = (layer_units - last) / max(1, n_layers - 1)
        return tuple(max(1, round(layer_units - step * i)) for i in range(n_layers))
    raise ValueError(f"shape is {shape!r}; use constant, pyramid or funnel")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _check_rate(name: str, value: float) -> None:
    _check(0.0 <= value < 1.0, f"{name} is {value}; use a rate in [0, 1), e.g. 0.2")


@dataclass(frozen=True)
class ConvBlock:
    """One convolution block: conv -> [batch norm] -> activation -> [pooling] -> [dropout].

    Attributes:
        filters: Number of convolution filters.
        kernel_size: Kernel length along every spatial axis.
        strides: Convolution stride along every spatial axis.
        padding: ``same`` keeps the size (stride 1); ``valid`` shrinks it by ``kernel_size - 1``.
        pooling: ``max``, ``avg`` or ``none``.
        pool_size: Pooling window and stride along every spatial axis.
        batch_norm: Batch normalisation between the convolution and its activation.
        activation: ``null`` uses ``model.activation``.
        dropout: Dropout rate after the block.
    """

    filters: int = 32
    kernel_size: int = 3
    strides: int = 1
    padding: Padding = "same"
    pooling: Pooling = "max"
    pool_size: int = 2
    batch_norm: bool = False
    activation: Optional[Activation] = None
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("filters", "kernel_size", "strides", "pool_size"):
            value = getattr(self, name)
            _check(value >= 1, f"{name} is {value}; use a positive integer")
        _check_rate("dropout", self.dropout)


@dataclass(frozen=True)
class BackboneSpec:
    """A pretrained network under the head (``model.backbone``): transfer learning.

    The head is ``model.units`` dense layers (``[]`` for none) and the task's output layer, on
    top of the backbone's output (pooled to a vector when it is an image). The backbone's
    *blocks* are counted from the top: one weighted layer each for a plain network, a named
    block (``block_16``, ``block7a``, ``conv5_block3``...) for the Keras Applications.

    Attributes:
        source: A Keras file or SavedModel folder (``.keras``, ``.h5``), an MLflow model URI
            (``runs:/<run>/model``, ``models:/<name>/<version>``), or a Keras Applications
            architecture: ``mobilenet_v2``, ``efficientnet_b0`` or ``resnet50``.
        weights: Applications only: a local weights file (``.h5``) for that architecture, as
            ``model.save_weights`` writes it; nothing is downloaded. ``null`` only with
            ``mode: scratch``.
        output_layer: Files and MLflow models: the layer whose output feeds the head;
            ``null`` takes the input of the model's last layer (its old head dropped).
        mode: ``progressive``: start frozen (but the top ``trainable_layers`` blocks) and
            unfreeze ``unfreeze_layers`` more blocks each time validation stops improving;
            ``frozen``: only the top ``trainable_layers`` blocks ever train; ``scratch``: the
            same network with fresh random weights, all of it trained (the comparison).
        trainable_layers: Top blocks trainable from the first epoch (searchable).
        unfreeze_layers: Blocks unfrozen at each step.
        max_unfrozen: Most blocks trainable in all; ``null``: the whole backbone.
        unfreeze_lr_factor: The learning rate is multiplied by this at each step.
        monitor: What "validation stops improving" watches (``val_loss`` or a ``val_*``
            metric; without a validation split, e.g. a final retrain, ``loss``).
        patience: Epochs without improvement before the next step.
        min_delta: Smallest change of ``monitor`` that counts as an improvement.
        unfreeze_at: A fixed schedule instead: unfreeze after these epochs (1-based). A
            search's final retrain replays its best trial's schedule this way.
    """

    source: str
    weights: Optional[str] = None
    output_layer: Optional[str] = None
    mode: BackboneMode = "progressive"
    trainable_layers: int = 0
    unfreeze_layers: int = 1
    max_unfrozen: Optional[int] = None
    unfreeze_lr_factor: float = 0.1
    monitor: str = "val_loss"
    patience: int = 1
    min_delta: float = 0.0
    unfreeze_at: Optional[tuple[int, ...]] = None

    def __post_init__(self) -> None:
        if isinstance(self.unfreeze_at, list):
            object.__setattr__(self, "unfreeze_at", tuple(self.unfreeze_at))
        _check(bool(str(self.source).strip()),
               "source is empty; give a Keras file, an MLflow model URI (runs:/..., "
               f"models:/...) or one of {', '.join(APPLICATIONS)}")
        app = self.application
        _check(app is None or self.weights is not None or self.mode == "scratch",
               f"source {self.source} has no weights; set weights: a local .h5 file of "
               f"{APPLICATIONS[app][0] if app else ''} weights (nothing is downloaded), or "
               "mode: scratch")
        _check(app is not None or self.weights is None,
               f"weights is set but source {self.source} is not a Keras Applications "
               f"architecture ({', '.join(APPLICATIONS)}); a file or MLflow model brings its "
               "own weights: remove weights")
        _check(self.trainable_layers >= 0,
               f"trainable_layers is {self.trainable_layers}; use 0 (frozen) or more blocks")
        _check(self.unfreeze_layers >= 1,
               f"unfreeze_layers is {self.unfreeze_layers}; use 1 or more blocks per step")
        _check(self.max_unfrozen is None or self.max_unfrozen >= self.trainable_layers,
               f"max_unfrozen is {self.max_unfrozen}, below trainable_layers "
               f"{self.trainable_layers}; raise it or set null (the whole backbone)")
        _check(0.0 < self.unfreeze_lr_factor <= 1.0,
               f"unfreeze_lr_factor is {self.unfreeze_lr_factor}; use a value in (0, 1], "
               "e.g. 0.1")
        _check(self.patience >= 0, f"patience is {self.patience}; use 0 or more epochs")
        _check(self.min_delta >= 0, f"min_delta is {self.min_delta}; use 0 or more")
        _check(bool(self.monitor), "monitor is empty; use e.g. val_loss")
        _check(all(e >= 1 for e in self.unfreeze_at or ()),
               f"unfreeze_at is {list(self.unfreeze_at or ())}; use epoch numbers from 1")

    @property
    def application(self) -> Optional[str]:
        """The Keras Applications name, or None for a file or an MLflow model."""
        name = str(self.source).strip().lower()
        return name if name in APPLICATIONS else None

    @property
    def is_mlflow(self) -> bool:
        return str(self.source).startswith(("runs:/", "models:/"))


@dataclass(frozen=True)
class ModelSpec:
    """The network: task, architecture and layer options (the ``model`` config section).

    Dense layers (the whole MLP, or the head after a CNN's flatten) take their widths from
    ``units`` when it is set, else from ``n_layers`` + ``layer_units`` + ``shape`` (see
    :func:`dense_widths`); the resolved list is :attr:`dense_units`.

    Attributes:
        task: ``classification`` (sparse integer labels) or ``regression``.
        num_classes: ``null`` takes the number of classes from the dataset at build time.
        architecture: ``mlp``, ``cnn1d``, ``cnn2d`` or ``cnn3d``.
        units: Explicit hidden-layer widths, e.g. ``[512, 256]``; ``[]`` for no hidden layer.
        n_layers: Number of hidden dense layers when ``units`` is null.
        layer_units: Width of the first of them.
        shape: ``constant``, ``pyramid`` (halves) or ``funnel`` (linear down to a quarter).
        activation: Activation of every hidden layer.
        layer_activations: Optional per-dense-layer activations, one per hidden layer.
        kernel_initializer: Initializer of every kernel, output layer included.
        l2: L2 penalty on every kernel (0 for none).
        dropout: Dropout rate after every hidden dense layer.
        layer_dropouts: Optional per-dense-layer dropout rates, one per hidden layer.
        input_shape: CNN only: the flat features reshaped to ``[spatial..., channels]``, e.g.
            ``[28, 28, 1]`` (cnn2d) or ``[784, 1]`` (cnn1d); ``null`` uses
            ``[input_dim, 1]``, a square or a cube with one channel.
        conv_blocks: CNN only: the convolution blocks, in order.
        builder: Your own network instead of ``architecture``: ``"package.module:function"``
            (or, from Python, the function itself), called with a
            :class:`~sparkdl_tune.executor.builder.BuildContext`; it returns an uncompiled
            ``tf.keras.Model`` that the package compiles with ``training``'s optimizer, loss
            and metrics (a function with ``compiled = True`` returns a compiled one). See
            ``examples/builders.py``.
        params: The builder's own hyper-parameters (``ctx.params``); searchable as
            ``model.params.<name>``.
        backbone: A pretrained network under a head of ``units`` dense layers, trained with
            progressive unfreezing: see :class:`BackboneSpec`. ``input_shape`` then says how
            the flat features form an image (``null``: a square with one channel).
    """

    task: Task = "classification"
    num_classes: Optional[int] = None
    architecture: Architecture = "mlp"
    units: Optional[tuple[int, ...]] = None
    n_layers: int = 2
    layer_units: int = 256
    shape: Shape = "pyramid"
    activation: Activation = "relu"
    layer_activations: Optional[tuple[Activation, ...]] = None
    kernel_initializer: Initializer = "glorot_uniform"
    l2: float = 0.0
    dropout: float = 0.0
    layer_dropouts: Optional[tuple[float, ...]] = None
    input_shape: Optional[tuple[int, ...]] = None
    conv_blocks: tuple[ConvBlock, ...] = (ConvBlock(filters=32), ConvBlock(filters=64))
    builder: Optional[Union[str, Callable[..., Any]]] = None
    # hash=False: a dict cannot be hashed, and specs are compared, not hashed, by content
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    backbone: Optional[BackboneSpec] = None

    def __post_init__(self) -> None:
        # Lists from Python callers become tuples, so specs stay hashable and comparable.
        for name in ("units", "layer_activations", "layer_dropouts", "input_shape",
                     "conv_blocks"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        _check_builder(self.builder)
        _check(self.backbone is None or self.builder is None,
               "both builder and backbone are set; a builder makes the whole network: use one "
               "(put a pretrained part inside your builder, or drop builder)")
        _check(self.num_classes is None or self.num_classes >= 2,
               f"num_classes is {self.num_classes}; use at least 2, or null to take it from "
               "the dataset")
        if self.units is not None:
            _check(all(u >= 1 for u in self.units),
                   f"units is {list(self.units)}; use positive widths, e.g. [256, 128]")
        _check(0 <= self.n_layers <= MAX_LAYERS,
               f"n_layers is {self.n_layers}; use 0 to {MAX_LAYERS}")
        _check(1 <= self.layer_units <= MAX_UNITS,
               f"layer_units is {self.layer_units}; use a positive width up to {MAX_UNITS}")
        _check(self.l2 >= 0, f"l2 is {self.l2}; use 0 (none) or a small penalty like 1e-4")
        _check_rate("dropout", self.dropout)
        n = len(self.dense_units)
        for name in ("layer_activations", "layer_dropouts"):
            value = getattr(self, name)
            _check(value is None or len(value) == n,
                   f"{name} has {len(value or ())} entries but there are {n} dense layers "
                   f"{list(self.dense_units)}; give one per layer or null")
        for rate in self.layer_dropouts or ():
            _check_rate("layer_dropouts entry", rate)
        rank = CONV_RANK.get(self.architecture)
        if rank is not None:
            if self.input_shape is not None:
                _check(len(self.input_shape) == rank + 1 and min(self.input_shape) >= 1,
                       f"input_shape is {list(self.input_shape)} but {self.architecture} needs "
                       f"{rank} spatial sizes plus channels, e.g. {_example_shape(rank)}")
            _check(len(self.conv_blocks) >= 1,
                   f"conv_blocks is empty; {self.architecture} needs at least one block")

    @property
    def dense_units(self) -> tuple[int, ...]:
        """Widths of the hidden dense layers, resolved from ``units`` or ``n_layers``/shape."""
        if self.units is not None:
            return self.units
        return dense_widths(self.n_layers, self.layer_units, self.shape)

    @property
    def conv_rank(self) -> int:
        """Number of spatial axes: 0 for ``mlp``, 1-3 for ``cnn1d``-``cnn3d``."""
        return CONV_RANK.get(self.architecture, 0)


def _check_builder(builder: Any) -> None:
    """The form of ``model.builder`` only; whether it imports is checked on the driver
    (:mod:`sparkdl_tune.driver.builder`), where the user's module may import TensorFlow."""
    if builder is None or callable(builder):
        return
    module, sep, name = str(builder).partition(":")
    _check(bool(sep and module.strip() and name.strip()) and " " not in str(builder),
           f"builder is {builder!r}; use 'package.module:function', e.g. "
           "'examples.builders:residual_mlp'")


def builder_identity(builder: Any) -> Any:
    """What identifies ``model.builder`` across processes: an import string as it is; a
    function as ``module:qualname sha256:<hash of its source>``, never its repr.

    A function's repr holds its memory address, which a notebook's rerun of the cell changes,
    so a search recorded by it would look changed on resume. The source's hash tells an edited
    function from a rerun one (a function of ``__main__`` or a notebook has nothing else to
    tell them apart); where no source can be read (``exec`` of a string), its bytecode is hashed.
    """
    if builder is None or isinstance(builder, str) or not callable(builder):
        return builder
    import hashlib
    import inspect
    import textwrap

    name = (f"{getattr(builder, '__module__', None) or '?'}:"
            f"{getattr(builder, '__qualname__', type(builder).__qualname__)}")
    try:
        text = textwrap.dedent(inspect.getsource(builder)).encode()
    except (OSError, TypeError):
        code = getattr(builder, "__code__", None)
        text = _code_bytes(code) if code is not None else b""
    return f"{name} sha256:{hashlib.sha256(text).hexdigest()[:16]}" if text else name


def _code_bytes(code: Any) -> bytes:
    """A code object's instructions, names and constants (nested functions' too), without its
    file name or line numbers."""
    parts = [code.co_code, repr(code.co_names).encode(), repr(code.co_varnames).encode()]
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            parts.append(_code_bytes(const))
        else:  # a set's order changes with each process's string hashing
            parts.append(repr(sorted(map(repr, const)) if isinstance(const, frozenset)
                              else const).encode())
    return b"\0".join(parts)


def _example_shape(rank: int) -> list[int]:
    return {1: [784, 1], 2: [28, 28, 1], 3: [8, 8, 8, 1]}[rank]


@dataclass(frozen=True)
class EarlyStoppingSpec:
    """Stop when ``monitor`` stops improving (Keras ``EarlyStopping``).

    Attributes:
        enabled: Add the callback.
        monitor: A logged quantity, e.g. ``val_loss`` or ``val_accuracy``.
        patience: Epochs without improvement before stopping.
        min_delta: Smallest change that counts as an improvement.
        restore_best_weights: Keep the weights of the best epoch, not the last.
    """

    enabled: bool = False
    monitor: str = "val_loss"
    patience: int = 3
    min_delta: float = 0.0
    restore_best_weights: bool = True

    def __post_init__(self) -> None:
        _check(self.patience >= 0, f"patience is {self.patience}; use 0 or more epochs")
        _check(self.min_delta >= 0, f"min_delta is {self.min_delta}; use 0 or more")
        _check(bool(self.monitor), "monitor is empty; use e.g. val_loss")


@dataclass(frozen=True)
class ReduceLRSpec:
    """Multiply the learning rate by ``factor`` on a plateau (Keras ``ReduceLROnPlateau``).

    Attributes:
        enabled: Add the callback.
        monitor: A logged quantity, e.g. ``val_loss``.
        factor: Multiplier in (0, 1).
        patience: Epochs without improvement before reducing.
        min_lr: The learning rate never goes below this.
    """

    enabled: bool = False
    monitor: str = "val_loss"
    factor: float = 0.5
    patience: int = 2
    min_lr: float = 1e-6

    def __post_init__(self) -> None:
        _check(0.0 < self.factor < 1.0, f"factor is {self.factor}; use a value in (0, 1)")
        _check(self.patience >= 0, f"patience is {self.patience}; use 0 or more epochs")
        _check(self.min_lr >= 0, f"min_lr is {self.min_lr}; use 0 or more")
        _check(bool(self.monitor), "monitor is empty; use e.g. val_loss")


@dataclass(frozen=True)
class TrainingSpec:
    """Optimiser, loss, metrics, batches and callbacks (the ``training`` config section).

    Attributes:
        optimizer: ``sgd``, ``adagrad``, ``adadelta``, ``rmsprop``, ``adam``, ``adamax`` or
            ``nadam``.
        learning_rate: Per-worker rate; the launcher may scale it by the number of workers.
            ``default``: the optimizer's own Keras default (:data:`KERAS_DEFAULT_RATES`), so
            optimizers compared in a search each run at their usual rate.
        momentum: For ``sgd`` and ``rmsprop`` only.
        nesterov: Nesterov momentum, ``sgd`` only.
        batch_size: Rows per step, per worker.
        epochs: Passes over the training data.
        lr_schedule: ``constant``, or ``cosine``: the rate decays along a half cosine from
            ``learning_rate`` to 0 over all the steps of ``epochs`` (in-graph, per step).
        time_limit_minutes: Stop after the epoch that would leave too little time for
            another one of the same length (all ranks agree); null for no limit.
        loss: ``auto`` picks sparse categorical cross-entropy for several classes, binary
            cross-entropy (one sigmoid unit) for two, ``mse`` for regression. Labels are
            always sparse integers; ``categorical_crossentropy`` one-hot encodes them inside
            the loss.
        metrics: ``auto`` is ``accuracy`` for classification, ``mae`` for regression.
            ``auc``, ``precision`` and ``recall`` need binary classification.
        early_stopping: See :class:`EarlyStoppingSpec`.
        reduce_lr: See :class:`ReduceLRSpec`.
    """

    optimizer: Optimizer = "adam"
    learning_rate: Union[float, Literal["default"]] = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    batch_size: int = 128
    epochs: int = 3
    lr_schedule: Schedule = "constant"
    time_limit_minutes: Optional[float] = None
    loss: Loss = "auto"
    metrics: tuple[Metric, ...] = ("auto",)
    early_stopping: EarlyStoppingSpec = field(default_factory=EarlyStoppingSpec)
    reduce_lr: ReduceLRSpec = field(default_factory=ReduceLRSpec)

    @property
    def rate(self) -> float:
        """The learning rate as a number (``default`` resolved for the optimizer)."""
        if self.learning_rate == "default":
            return KERAS_DEFAULT_RATES[self.optimizer]
        return float(self.learning_rate)

    def __post_init__(self) -> None:
        if isinstance(self.metrics, list):
            object.__setattr__(self, "metrics", tuple(self.metrics))
        _check(self.learning_rate == "default" or self.learning_rate > 0,
               f"learning_rate is {self.learning_rate}; use a positive rate, e.g. 0.001, or "
               "default (the optimizer's own Keras default)")
        _check(0.0 <= self.momentum < 1.0,
               f"momentum is {self.momentum}; use a value in [0, 1), e.g. 0.9")
        _check(self.momentum == 0.0 or self.optimizer in MOMENTUM_OPTIMIZERS,
               f"momentum is {self.momentum} but optimizer {self.optimizer!r} does not use it; "
               "set momentum: 0 or optimizer: sgd")
        _check(not self.nesterov or self.optimizer == "sgd",
               f"nesterov is true but optimizer is {self.optimizer!r}; set optimizer: sgd, or "
               "use nadam for Nesterov Adam")
        _check(not self.nesterov or self.momentum > 0,
               "nesterov is true but momentum is 0; set momentum, e.g. 0.9")
        _check(self.batch_size >= 1, f"batch_size is {self.batch_size}; use a positive integer")
        _check(self.epochs >= 1, f"epochs is {self.epochs}; use a positive integer")
        _check(self.time_limit_minutes is None or self.time_limit_minutes > 0,
               f"time_limit_minutes is {self.time_limit_minutes}; use a positive number of "
               "minutes, or null for no limit")
        _check(self.lr_schedule == "constant" or not self.reduce_lr.enabled,
               f"lr_schedule is {self.lr_schedule!r} and reduce_lr is enabled: both set the "
               "learning rate; use one (reduce_lr.enabled: false or lr_schedule: constant)")
