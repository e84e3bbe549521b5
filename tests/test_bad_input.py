"""Each kind of bad input: exit code 2, one line naming the culprit and the fix, no output left."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from sparkdl_tune.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_prepare(args, capsys):
    code = main(["prepare", *args])
    return code, capsys.readouterr().err


def error_lines(stderr: str) -> list[str]:
    """Our error lines; progress lines (timestamped) and Spark's own start-up lines aside."""
    assert "Traceback" not in stderr
    return [ln for ln in stderr.splitlines() if ln.startswith("sparkdl-tune:")]


def assert_clean_failure(code, err, tmp_path, *needles):
    assert code == 2
    err = error_lines(err)
    assert len(err) == 1, err
    assert err[0].startswith("sparkdl-tune: error: ")
    for needle in needles:
        assert needle in err[0], err[0]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name == "out" or ".tmp-" in p.name]
    assert leftovers == []


def parquet_source(spark, tmp_path, rows, schema):
    path = str(tmp_path / "src.parquet")
    spark.createDataFrame(rows, schema).coalesce(1).write.parquet(path)
    return path


def good_rows(n=60):
    return [(float(i), float(i % 7), i % 3) for i in range(n)]


def tabular(src, tmp_path, *extra):
    return ["tabular", "--input", src, "--label", "label", "--out", str(tmp_path / "out"), *extra]


def test_missing_column(spark, tmp_path, capsys):
    src = parquet_source(spark, tmp_path, good_rows(), "a double, b double, label int")
    code, err = run_prepare(tabular(src, tmp_path, "--features", "a,c"), capsys)
    assert_clean_failure(code, err, tmp_path, "column 'c' is missing", "fix --features")


def test_missing_label_column(spark, tmp_path, capsys):
    src = parquet_source(spark, tmp_path, good_rows(), "a double, b double, y int")
    code, err = run_prepare(tabular(src, tmp_path, "--features", "a,b"), capsys)
    assert_clean_failure(code, err, tmp_path, "column 'label' is missing", "fix --label")


def test_mistyped_feature_column(spark, tmp_path, capsys):
    rows = [(float(i), f"s{i}", i % 3) for i in range(60)]
    src = parquet_source(spark, tmp_path, rows, "a double, b string, label int")
    code, err = run_prepare(tabular(src, tmp_path), capsys)
    assert_clean_failure(code, err, tmp_path, "feature column 'b' is string, not numeric")


def test_string_label_for_classification(spark, tmp_path, capsys):
    rows = [(float(i), float(i), "cat") for i in range(60)]
    src = parquet_source(spark, tmp_path, rows, "a double, b double, label string")
    code, err = run_prepare(tabular(src, tmp_path), capsys)
    assert_clean_failure(code, err, tmp_path, "label column 'label' is string",
                         "encode classes as integers")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_features(spark, tmp_path, capsys, bad):
    rows = good_rows()
    rows[5] = (bad, 1.0, 1)
    src = parquet_source(spark, tmp_path, rows, "a double, b double, label int")
    code, err = run_prepare(tabular(src, tmp_path, "--validation-fraction", "0.2"), capsys)
    assert_clean_failure(code, err, tmp_path, "NaN, inf or null in feature 'a'",
                         "clean or impute")


def test_nan_inside_feature_array(spark, tmp_path, capsys):
    rows = [([i * 0.1, 0.2, 0.3], i % 2) for i in range(60)]
    rows[3] = ([0.1, float("nan"), 0.3], 1)
    src = parquet_source(spark, tmp_path, rows, "features array<float>, label int")
    code, err = run_prepare(tabular(src, tmp_path, "--test-fraction", "0.45",
                                    "--validation-fraction", "0.45"), capsys)
    assert_clean_failure(code, err, tmp_path, "feature 'features'")


def test_feature_arrays_of_unequal_length(spark, tmp_path, capsys):
    rows = [([0.1, 0.2, 0.3] if i % 2 else [0.1, 0.2], i % 2) for i in range(60)]
    src = parquet_source(spark, tmp_path, rows, "features array<float>, label int")
    code, err = run_prepare(tabular(src, tmp_path), capsys)
    assert_clean_failure(code, err, tmp_path, "unequal lengths (2..3)", "pad or truncate")


def test_label_out_of_range(spark, tmp_path, capsys):
    src = parquet_source(spark, tmp_path, good_rows(), "a double, b double, label int")
    code, err = run_prepare(tabular(src, tmp_path, "--num-classes", "2"), capsys)
    assert_clean_failure(code, err, tmp_path, "label 2 in 'label' is out of range for 2 classes")


def test_negative_label(spark, tmp_path, capsys):
    rows = [(float(i), 1.0, -1 if i == 0 else i % 3) for i in range(60)]
    src = parquet_source(spark, tmp_path, rows, "a double, b double, label int")
    code, err = run_prepare(tabular(src, tmp_path, "--test-fraction", "0.5",
                                    "--validation-fraction", "0.4"), capsys)
    assert_clean_failure(code, err, tmp_path, "label -1 in 'label' is out of range")


def test_non_integer_label(spark, tmp_path, capsys):
    rows = [(float(i), 1.0, i % 3 + 0.5) for i in range(60)]
    src = parquet_source(spark, tmp_path, rows, "a double, b double, label double")
    code, err = run_prepare(tabular(src, tmp_path), capsys)
    assert_clean_failure(code, err, tmp_path, "are not integers", "--task regression")


def test_empty_split(spark, tmp_path, capsys):
    src = parquet_source(spark, tmp_path, good_rows(), "a double, b double, label int")
    code, err = run_prepare(tabular(src, tmp_path, "--test-fraction", "0"), capsys)
    assert_clean_failure(code, err, tmp_path, "split 'test' is empty")


def test_unreadable_path(tmp_path, capsys, spark):
    code, err = run_prepare(tabular(str(tmp_path / "nope.csv"), tmp_path), capsys)
    assert_clean_failure(code, err, tmp_path, "nope.csv does not exist", "check --input")


def test_corrupt_parquet(tmp_path, capsys, spark):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"this is not parquet at all")
    code, err = run_prepare(tabular(str(bad), tmp_path), capsys)
    assert_clean_failure(code, err, tmp_path, "cannot read parquet source")


def test_missing_fashion_mnist_folder(tmp_path, capsys, spark):
    code, err = run_prepare(["fashion-mnist", "--source", str(tmp_path / "none"),
                             "--out", str(tmp_path / "out")], capsys)
    assert_clean_failure(code, err, tmp_path, "does not exist", "apt-get install")


def test_validate_rejects_a_folder_without_manifest(tmp_path, capsys, spark):
    (tmp_path / "ds").mkdir()
    code = main(["validate", "--dataset", str(tmp_path / "ds")])
    err = error_lines(capsys.readouterr().err)
    assert code == 2 and len(err) == 1 and len(err) == 1 and "manifest.json missing" in err[0]


def test_validate_catches_a_split_broken_after_prepare(spark, tiny_fashion_dir, tmp_path,
                                                       capsys):
    out = tmp_path / "ds"
    assert main(["prepare", "fashion-mnist", "--source", str(tiny_fashion_dir),
                 "--out", str(out)]) == 0
    capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["layout"]["num_classes"] = 5  # a consistent manifest whose labels are not
    manifest["layout"]["class_names"] = manifest["layout"]["class_names"][:5]
    (out / "manifest.json").write_text(json.dumps(manifest))
    code = main(["validate", "--dataset", str(out)])
    err = error_lines(capsys.readouterr().err)
    assert code == 2 and len(err) == 1 and "out of range for 5 classes" in err[0]


def run_console(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """The real console script in its own process, from the repository root, on local[1]."""
    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    return subprocess.run(
        [exe, *args, "spark.master=local[1]", "spark.conf.spark.ui.enabled=false"],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def assert_one_error_line(proc, *needles) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, lines
    assert lines[0].startswith("sparkdl-tune: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_console_script_exit_code_and_single_line(tmp_path):
    """The real console script, in its own process: exit 2 and one line on stderr."""
    proc = run_console("prepare", "tabular", "--input", str(tmp_path / "missing.csv"),
                       "--label", "y", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    missing = tmp_path / "missing.csv"
    assert error_lines(proc.stderr) == [
        f"sparkdl-tune: error: source {missing} does not exist; check --input"]
    assert not (tmp_path / "out").exists()


def test_a_config_key_given_twice_stops_train_with_both_lines(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("data:\n  path: data/fashion-mnist\ntraining:\n  epochs: 3\n"
                   "  batch_size: 64\n  learning_rate: 0.01\n  epochs: 9\n")
    proc = run_console("train", str(job))
    assert_one_error_line(proc, f"{job}: key 'training.epochs' is given twice (lines 4 and 7)")


def test_a_space_file_key_given_twice_stops_tune_before_any_data_work(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("space:\n  model.dropout: {uniform: [0, 0.5]}\n"
                     "  training.learning_rate: {loguniform: [1.0e-4, 1.0e-2]}\n"
                     "  model.dropout: {uniform: [0.1, 0.2]}\n")
    job = tmp_path / "job.yaml"
    job.write_text(f"data:\n  path: {tmp_path / 'no-such-dataset'}\n"
                   f"search:\n  space_file: {space}\n  output_dir: {tmp_path / 'out'}\n"
                   f"mlflow:\n  tracking_uri: sqlite:///{tmp_path}/mlflow.db\n")
    proc = run_console("tune", str(job))
    # the dataset does not exist either: the space file is read first
    assert_one_error_line(proc, f"{space}: key 'space.model.dropout' is given twice "
                                "(lines 2 and 4)")
    assert not (tmp_path / "out").exists()


def test_an_unreachable_tracking_server_stops_train_before_the_data_is_read(tmp_path):
    started = time.monotonic()
    proc = run_console("train", "conf/jobs/fashion_mlp.yaml",
                       "mlflow.tracking_uri=http://127.0.0.1:9",
                       f"data.path={tmp_path / 'no-such-dataset'}",
                       f"data.cache_url={tmp_path / 'cache'}")
    elapsed = time.monotonic() - started
    print(f"unreachable tracking server: exit {proc.returncode} after {elapsed:.1f} s")
    line = assert_one_error_line(proc, "http://127.0.0.1:9", "MLflow tracking server",
                                 "mlflow server", "mlflow.tracking_uri")
    assert "no-such-dataset" not in line  # the data path is checked only after the server


def test_an_unreachable_tracking_server_stops_report(tmp_path):
    proc = run_console("report", "some-search", "mlflow.tracking_uri=http://127.0.0.1:9",
                       f"search.output_dir={tmp_path / 'out'}")
    assert_one_error_line(proc, "http://127.0.0.1:9", "MLflow tracking server")


@pytest.mark.parametrize("raised,code,kind", [
    ("ConfigError", 2, "error"), ("FatalError", 1, "failed"), ("TrialFailed", 1, "failed"),
    ("QuotaExceeded", 3, "failed")])
def test_the_cli_exits_with_the_errors_own_exit_code(monkeypatch, capsys, raised, code, kind):
    """cli.main returns each error's own ``exit_code`` (issue 20), one line either way."""
    from sparkdl_tune import cli, errors

    class QuotaExceeded(errors.SparkdlTuneError):  # a subclass with a code of its own
        exit_code = 3

    error = getattr(errors, raised, QuotaExceeded)

    def run(args):
        raise error(f"{raised} at http://u:pw@host/x\nsecond line")

    monkeypatch.setattr(cli, "_run", run)
    assert main(["validate", "--dataset", "nowhere"]) == code
    lines = error_lines(capsys.readouterr().err)
    assert lines == [f"sparkdl-tune: {kind}: {raised} at http://***@host/x\\nsecond line"]


def test_a_bad_execution_warm_stops_tune_with_one_line(tmp_path):
    proc = run_console("tune", "conf/jobs/fashion_tune.yaml", "execution.warm=sometimes",
                       f"search.output_dir={tmp_path / 'out'}")
    assert_one_error_line(proc, "execution.warm", "must be true or false", "'sometimes'")
