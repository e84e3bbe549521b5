"""bench/mlflow_spark_study.py's retrain plan, the one pure rule the anchor copies from
sparkdl_tune/search/final.py (no Spark, TensorFlow or benchmark run here)."""

from __future__ import annotations

import importlib.util
import os

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")


def _anchor():
    spec = importlib.util.spec_from_file_location(
        "bench_mlflow_spark_study", os.path.join(BENCH, "mlflow_spark_study.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_final_epochs_cut_to_the_minutes_and_kept_without_a_measurement():
    anchor = _anchor()
    # 60,000 rows at 5,000 samples/s on 1 thread, sqrt(2) faster on 2: ~8.5 s an epoch;
    # 90% of 1 minute holds 6 of them
    assert anchor.final_epochs(5000.0, 60000, 1.0, 30) == 6
    assert anchor.final_epochs(5000.0, 60000, 60.0, 30) == 30  # all fit: capped at 30
    assert anchor.final_epochs(5000.0, 60000, 0.01, 30) == 1  # at least one epoch
    assert anchor.final_epochs(0.0, 60000, 1.0, 30) == 30  # not measured: keep, stop at limit
