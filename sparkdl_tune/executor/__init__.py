"""Code that runs inside a Spark task (or in-process for one rank): one rank's training.

:mod:`.worker` trains one rank, :mod:`.stream` turns its shard (read by one of :mod:`.readers`)
into ``tf.data``, :mod:`.models` builds the Keras network. Executor modules import only each
other, :mod:`sparkdl_tune.spec` and the shared leaves (errors, logs, model_spec); never driver
code (``tests/test_layout.py`` holds it so).
"""
