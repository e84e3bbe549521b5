"""The user's own Keras model (``model.builder``): import it, call it, check it, compile it.

A builder is ``"package.module:function"`` (or, from Python, the function itself) called with one
:class:`BuildContext`; it returns a ``tf.keras.Model`` that takes the flat feature vector and
ends in the task's head (``ctx.output_units`` units with ``ctx.output_activation``;
``ctx.head(x)`` adds that layer). Uncompiled, the package compiles it with ``training``'s
optimizer, loss and metrics, like its own networks; a function with the attribute
``compiled = True`` returns a compiled model whose optimizer and loss are kept (the package
still sets its metrics, so the search metric exists, and wraps the optimizer for Horovod).

Everything that goes wrong in here is the trial's failure, said in one line that names the
builder and the fix: :class:`~sparkdl_tune.errors.TrialFailed`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from ..config.model_spec import ModelSpec, TrainingSpec
from ..errors import TrialFailed


@dataclass(frozen=True)
class BuildContext:
    """What a builder gets: the trial's hyper-parameters and the resolved settings.

    Attributes:
        params: ``model.params`` with the trial's ``model.params.*`` values in it.
        input_dim: Number of features in each flat input row (the model's input shape).
        output_units: Units of the output layer (classes; 1 for regression or binary).
        output_activation: ``softmax``, ``sigmoid`` or ``linear``.
        task: ``classification`` or ``regression``.
        num_classes: Number of classes; None for regression.
        model: The whole ``model`` section (activation, l2, dropout, ... if you want them).
        training: The ``training`` section.
        seed: Seed for initializers and dropout, so two builds are identical.
    """

    params: dict[str, Any]
    input_dim: int
    output_units: int
    output_activation: str
    task: str
    num_classes: Optional[int]
    model: ModelSpec
    training: TrainingSpec
    seed: Optional[int] = None

    def inputs(self):
        """``tf.keras.Input`` of the flat features, named like the package's own models."""
        import tensorflow as tf

        return tf.keras.Input(shape=(self.input_dim,), name="features", dtype="float32")

    def head(self, x):
        """The output layer the task needs, applied to ``x``."""
        import tensorflow as tf

        return tf.keras.layers.Dense(self.output_units, activation=self.output_activation,
                                     name="output")(x)


def builder_name(builder: Any) -> str:
    """``package.module:function`` of a builder string or function (for messages and logs)."""
    if isinstance(builder, str):
        return builder
    module = getattr(builder, "__module__", None) or "?"
    return f"{module}:{getattr(builder, '__qualname__', repr(builder))}"


def load_builder(builder: Any) -> Callable[[BuildContext], Any]:
    """The builder function; an import string is imported (the working directory is tried as
    well, as ``python -m`` would). Raises ImportError/AttributeError/TypeError as they are."""
    if callable(builder):
        return builder
    module_name, _, attr = str(builder).partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        if os.getcwd() in sys.path:
            raise
        sys.path.append(os.getcwd())
        module = importlib.import_module(module_name)
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part)
    if not callable(fn):
        raise TypeError(f"{attr} in {module_name} is a {type(fn).__name__}, not a function")
    return fn


def build_user_model(model: ModelSpec, training: TrainingSpec, input_dim: int,
                     num_classes: Optional[int], head, metrics: tuple[str, ...], optimizer,
                     wrap_optimizer: Optional[Callable[[Any], Any]] = None,
                     seed: Optional[int] = None):
    """Build the user's network and compile it (see the module docstring).

    Args:
        head: The task's :class:`~sparkdl_tune.executor.compilation.Head`.
        metrics: Resolved metric names.
        optimizer: The package's (wrapped) optimizer; used unless the builder compiled.
        wrap_optimizer: What wrapped it (e.g. Horovod's); applied to a compiled model's own.
        seed: Handed to the builder as ``ctx.seed``.
    """
    from .compilation import keras_loss, keras_metric

    name = builder_name(model.builder)
    try:
        fn = load_builder(model.builder)
    except Exception as exc:
        raise TrialFailed(
            f"model.builder {name} cannot be imported ({type(exc).__name__}: "
            f"{_first_line(exc)}); make the module importable on the executors (run from its "
            "folder, set PYTHONPATH, or ship it with --py-files)") from None
    ctx = BuildContext(params=dict(model.params), input_dim=input_dim,
                       output_units=head.units, output_activation=head.activation,
                       task=model.task, num_classes=num_classes, model=model,
                       training=training, seed=seed)
    try:
        net = fn(ctx)
    except Exception as exc:
        raise TrialFailed(f"model.builder {name} raised {type(exc).__name__}: "
                          f"{_first_line(exc)} (params {dict(model.params)}); fix the builder "
                          "or the model.params values it got") from None
    _check_shape(name, net, input_dim, head)
    import tensorflow as tf

    compiled = bool(getattr(fn, "compiled", False))
    if compiled:
        if getattr(net, "optimizer", None) is None:
            raise TrialFailed(f"model.builder {name} has compiled = True but returned an "
                              "uncompiled model; call model.compile(...) or drop the flag")
        optimizer, loss = net.optimizer, net.loss
        if wrap_optimizer is not None:
            optimizer = wrap_optimizer(optimizer)
    else:
        loss = keras_loss(tf, head.loss)
    net.compile(optimizer=optimizer, loss=loss, metrics=[keras_metric(tf, m) for m in metrics])
    return net


def _check_shape(name: str, net: Any, input_dim: int, head) -> None:
    output = getattr(net, "output_shape", None)
    inputs = getattr(net, "input_shape", None)
    if output is None or inputs is None:
        raise TrialFailed(f"model.builder {name} returned {type(net).__name__}, not a "
                          "tf.keras.Model; return tf.keras.Model(inputs, outputs)")
    want = f"(None, {head.units}) ({head.units} {head.activation} units)"
    if isinstance(output, list) or tuple(output)[1:] != (head.units,):
        raise TrialFailed(f"model.builder {name} returned a model with output {output} but "
                          f"the task needs {want}; end it with ctx.head(x)")
    if isinstance(inputs, list) or tuple(inputs)[1:] != (input_dim,):
        raise TrialFailed(f"model.builder {name} returned a model with input {inputs} but "
                          f"the data has (None, {input_dim}) flat features; start it with "
                          "ctx.inputs() (reshape inside the model)")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else ""
