"""End-to-end on the real Fashion-MNIST (slow: make test-slow)."""

from __future__ import annotations

import os

import pytest
from conftest import train_overrides

from sparkdl_tune.config.loader import load_config
from sparkdl_tune.driver.train import train

FASHION = "/usr/share/datasets/fashion-mnist"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fashion(spark, tmp_path_factory):
    from sparkdl_tune.driver.datasets import FashionMnistSource
    from sparkdl_tune.driver.preparation import prepare

    if not os.path.isdir(FASHION):
        pytest.fail(f"{FASHION} missing: scripts/setup.sh installs dataset-fashion-mnist")
    out = tmp_path_factory.mktemp("fashion") / "fm"
    prepare(FashionMnistSource(FASHION), out, spark)
    return out


@pytest.mark.parametrize("backend", [
    pytest.param("horovod", marks=pytest.mark.requires_horovod), "tf_distribute"])
def test_two_ranks_match_one_process_accuracy(spark, fashion, tmp_path, backend):
    """num_proc 2 (each engine, two Spark tasks) within 1.0 point of num_proc 1, same epochs."""
    common = dict(model__units="[256,128]", training__batch_size=128, training__epochs=5)
    one = train(load_config(None, overrides=train_overrides(fashion, tmp_path, **common)),
                spark)
    two = train(load_config(None, overrides=train_overrides(
        fashion, tmp_path, execution__num_proc=2, execution__backend=backend, **common)), spark)
    a1 = one["test_metrics"]["test_accuracy"]
    a2 = two["test_metrics"]["test_accuracy"]
    print(f"\n{backend}: num_proc=1: {a1:.4f}  num_proc=2: {a2:.4f}  "
          f"diff {100 * (a2 - a1):+.2f} points")
    assert a1 > 0.85
    assert abs(a1 - a2) <= 0.010
