"""The prepare workflow end to end on tiny real data: splits, schema, manifest, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import spark_submit

from sparkdl_tune.cli import main
from sparkdl_tune.driver.dataset import read_manifest
from sparkdl_tune.driver.datasets import (
    FashionMnistSource,
    SyntheticClassificationSource,
    SyntheticRegressionSource,
    TabularSource,
)
from sparkdl_tune.driver.datasets.idx import read_rows
from sparkdl_tune.driver.datasets.splits import stratified_holdout
from sparkdl_tune.driver.preparation import prepare
from sparkdl_tune.driver.validation import validate_dataset


def test_fashion_mnist_splits_schema_and_manifest(spark, tiny_fashion_dir, tmp_path):
    out = tmp_path / "fm"
    manifest = prepare(FashionMnistSource(str(tiny_fashion_dir)), out, spark)
    assert manifest.rows == {"train": 270, "validation": 30, "test": 100}
    assert manifest.class_counts["validation"] == {str(c): 3 for c in range(10)}
    assert manifest.num_features == 784
    train = spark.read.parquet(str(out / "train"))
    assert dict(train.dtypes) == {"features": "array<float>", "label": "int"}
    stats = manifest.feature_stats["features"]
    assert 0.0 <= stats["min"] <= stats["max"] <= 1.0
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["rows"]["train"] == 270
    assert read_manifest(out).layout.num_classes == 10
    # the rows are the IDX rows scaled to [0, 1]
    first_test = spark.read.parquet(str(out / "test")).orderBy("label").first()
    images = read_rows(str(tiny_fashion_dir / "t10k-images-idx3-ubyte.gz"))
    labels = read_rows(str(tiny_fashion_dir / "t10k-labels-idx1-ubyte.gz"))
    candidates = images[labels == first_test["label"]] / 255.0
    assert np.any(np.all(np.isclose(candidates, first_test["features"], atol=1e-6), axis=1))


def test_stratified_holdout_is_exact_and_seeded():
    labels = np.repeat(np.arange(10), 6000)
    mask = stratified_holdout(labels, 0.1, seed=42)
    assert mask.sum() == 6000
    assert all((labels[mask] == c).sum() == 600 for c in range(10))
    assert np.array_equal(mask, stratified_holdout(labels, 0.1, seed=42))
    assert not np.array_equal(mask, stratified_holdout(labels, 0.1, seed=7))
    uneven = np.array([0] * 7 + [1] * 3)
    assert stratified_holdout(uneven, 0.5, seed=1).sum() == 5


def test_synthetic_regression_is_x1_times_x2(spark, tmp_path):
    src = SyntheticRegressionSource(rows=2000, distractors=2, noise=0.0, seed=3)
    manifest = prepare(src, tmp_path / "reg", spark)
    assert sum(manifest.rows.values()) == 2000
    assert manifest.layout.features == ("x1", "x2", "d1", "d2")
    pdf = spark.read.parquet(str(tmp_path / "reg" / "train")).limit(50).toPandas()
    assert np.allclose(pdf["y"], pdf["x1"] * pdf["x2"])
    assert pdf[["x1", "x2", "d1"]].abs().max().max() <= 1.0


def test_synthetic_classification_is_separable_by_argmax(spark, tmp_path):
    src = SyntheticClassificationSource(rows=3000, features=4, classes=3, seed=5)
    manifest = prepare(src, tmp_path / "cls", spark)
    assert set(manifest.class_counts["train"]) == {"0", "1", "2"}
    pdf = spark.read.parquet(str(tmp_path / "cls" / "test")).toPandas()
    predicted = pdf[["f1", "f2", "f3"]].to_numpy().argmax(axis=1)
    assert (predicted == pdf["label"]).mean() > 0.9


def test_tabular_csv_with_named_columns_and_seeded_splits(spark, tmp_path):
    csv = tmp_path / "t.csv"
    rows = ["a,b,label"] + [f"{i},{i * 0.5},{i % 3}" for i in range(400)]
    csv.write_text("\n".join(rows) + "\n")
    src = TabularSource(str(csv), label="label", features=("a", "b"), seed=9)
    m1 = prepare(src, tmp_path / "t1", spark)
    m2 = prepare(src, tmp_path / "t2", spark)
    assert m1.rows == m2.rows and sum(m1.rows.values()) == 400
    assert m1.layout.num_classes == 3 and m1.layout.feature_kind == "columns"
    ids1 = sorted(r["a"] for r in spark.read.parquet(str(tmp_path / "t1/test")).collect())
    ids2 = sorted(r["a"] for r in spark.read.parquet(str(tmp_path / "t2/test")).collect())
    assert ids1 == ids2


def test_overwrite_replaces_atomically_and_refuses_without_flag(spark, tiny_fashion_dir,
                                                                tmp_path, capsys):
    out = tmp_path / "fm"
    prepare(FashionMnistSource(str(tiny_fashion_dir)), out, spark)
    code = main(["prepare", "fashion-mnist", "--source", str(tiny_fashion_dir),
                 "--out", str(out)])
    assert code == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    code = main(["prepare", "fashion-mnist", "--source", str(tiny_fashion_dir),
                 "--out", str(out), "--overwrite", "--seed", "7"])
    assert code == 0
    assert read_manifest(out).source["seed"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fm"]


def test_validate_accepts_a_prepared_dataset(spark, tiny_fashion_dir, tmp_path, capsys):
    out = tmp_path / "fm"
    prepare(FashionMnistSource(str(tiny_fashion_dir)), out, spark)
    assert validate_dataset(spark, str(out)).rows["test"] == 100
    assert main(["validate", "--dataset", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


@pytest.mark.parametrize("fraction", [1.5, -0.1])
def test_bad_fraction_is_a_config_error(tiny_fashion_dir, tmp_path, capsys, spark, fraction):
    code = main(["prepare", "fashion-mnist", "--source", str(tiny_fashion_dir),
                 "--out", str(tmp_path / "x"), "--validation-fraction", str(fraction)])
    assert code == 2
    assert "--validation-fraction" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_spark_submit_prepare_job(tiny_fashion_dir, tmp_path):
    """jobs/prepare.py under a real spark-submit --master local[2]."""
    out = tmp_path / "fm"
    proc = spark_submit("jobs/prepare.py", "fashion-mnist", "--source", str(tiny_fashion_dir),
                        "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    # spark-submit merges the Python driver's stderr (our progress lines) into stdout
    assert "prepare: train 270, validation 30, test 100 rows" in proc.stdout
    manifest = read_manifest(out)
    assert manifest.rows == {"train": 270, "validation": 30, "test": 100}
    assert manifest.num_features == 784 and manifest.schema["label"] == "int"
