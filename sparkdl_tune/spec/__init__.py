"""What crosses the driver/executor line: small, picklable records of plain data.

The driver builds a :class:`~sparkdl_tune.spec.job.TrainJob` (with the
:class:`~sparkdl_tune.spec.data.TrainingData` handle of the materialised splits), ships it to
each rank, and gets a :class:`~sparkdl_tune.spec.result.TrainResult` back; each Horovod rank
says how it ended with :mod:`sparkdl_tune.spec.outcome`. Nothing here imports TensorFlow,
pyspark or mlflow (``tests/test_layout.py`` holds it so), so both sides can import it cheaply.
"""
