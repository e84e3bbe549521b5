"""A place the package cannot write stops the command before Spark starts (issue 20): exit 2,
one line naming the setting, the path and what is wrong; no Spark application, no MLflow store.

Running as root, permission bits do not stop a write, so the unwritable places here are a file
where a folder is needed, a folder below a file, and a folder where a file is needed. One case
of each sub-command family (tune, train, prepare, report) runs the real console script in its own
process and folder, with ``SPARK_HOME`` pointing nowhere: had Spark been started, the command
would have died with a traceback instead. The other cases call the same entry point in-process
(``sparkdl_tune.cli.main``, what the console script runs) from their own folder, with the same
assertions on the exit code, the one line and what is left on disk, and no new SparkContext.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from sparkdl_tune.errors import EXIT_BAD_INPUT, ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[1]
JOB = str(ROOT / "conf" / "jobs" / "tabular_regression.yaml")  # search.name tabular-regression
SPARK_LINES = ("SparkContext", "log4j", "NativeCodeLoader", "Setting default log level")


def run_cli(cwd: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["SPARK_HOME"] = str(cwd / "no-spark-here")  # a Spark start would fail loudly
    return subprocess.run([exe, *args, "--conf-dir", str(ROOT / "conf"),
                           "spark.master=local[1]", "spark.conf.spark.ui.enabled=false"],
                          capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def cases(tmp: pathlib.Path) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (command line, what its one error line must say)."""
    blocker = tmp / "blocker"  # a file where a folder is needed
    folder = tmp / "a-folder"  # a folder where a file is needed
    store = f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db"
    data = f"data.path={tmp / 'no-such-dataset'}"  # read only after the checks
    tune = ["tune", JOB, data, store]
    train = ["train", JOB, data, store]
    return {
        "tune output_dir below a file":
            ([*tune, f"search.output_dir={blocker}"],
             ["search.output_dir:", f"{blocker}/tabular-regression",
              f"its parent {blocker} is a file, not a folder"]),
        "tune output folder is a file":
            ([*tune, f"search.output_dir={tmp}", "search.name=blocker"],
             ["search.output_dir:", f"{blocker} exists as a file, not a folder"]),
        "tune cache_url is a file":
            ([*tune, f"search.output_dir={tmp}/out", f"data.cache_url={blocker}"],
             ["data.cache_url:", f"{blocker} exists as a file, not a folder"]),
        "train cache_url below a file":
            ([*train, f"data.cache_url=file://{blocker}/cache"],
             ["data.cache_url:", f"its parent {blocker} is a file"]),
        "train sqlite store below a file":
            (["train", JOB, data, f"mlflow.tracking_uri=sqlite:///{blocker}/mlflow.db"],
             ["mlflow.tracking_uri:", "MLflow store's database",
              f"its parent {blocker} is a file"]),
        "train default store's artifact folder is a file":
            (["train", JOB, data, f"data.cache_url={tmp}/cache"],
             ["mlflow.tracking_uri:", "default MLflow store's artifact folder",
              f"{tmp}/mlartifacts/", f"its parent {tmp}/mlartifacts is a file"]),
        "train --summary below a file":
            ([*train, "--summary", f"{blocker}/summary.json"],
             ["--summary:", f"its parent {blocker} is a file"]),
        "tune --summary is a folder":
            ([*tune, "--summary", str(folder)],
             ["--summary:", f"{folder} is a folder, not a file"]),
        "prepare --out below a file":
            (["prepare", "tabular", "--input", str(tmp / "missing.csv"), "--label", "y",
              "--out", f"{blocker}/dataset"],
             ["--out:", "dataset folder", f"its parent {blocker} is a file"]),
        "report --out is a file":
            (["report", "some-search", store, "--out", str(blocker)],
             ["--out:", "report folder", f"{blocker} exists as a file"]),
        "report store below a file":
            (["report", "some-search", f"mlflow.tracking_uri=sqlite:///{blocker}/m.db"],
             ["mlflow.tracking_uri:", "MLflow store's database", f"its parent {blocker}"]),
        "report default folder below a file":
            (["report", "some-search", store, f"search.output_dir={blocker}/out"],
             ["search.output_dir:", f"its parent {blocker} is a file"]),
    }


# these run the real console script in a process of their own: one per sub-command family
IN_A_PROCESS = {"tune output_dir below a file", "train default store's artifact folder is a file",
                "prepare --out below a file", "report --out is a file"}


def run_in_process(cwd: pathlib.Path, monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """What the console script runs (``cli.main``), here, from ``cwd``, with the same
    environment as ``run_cli``; the exit code and what went to stderr."""
    from pyspark import SparkContext

    from sparkdl_tune.cli import main

    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SPARK_HOME", str(cwd / "no-spark-here"))
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    active = SparkContext._active_spark_context
    code = main([*args, "--conf-dir", str(ROOT / "conf"), "spark.master=local[1]",
                 "spark.conf.spark.ui.enabled=false"])
    assert SparkContext._active_spark_context is active  # no Spark started (or stopped)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", list(cases(pathlib.Path("/t"))))
def test_an_unwritable_place_stops_the_command_before_spark_starts(tmp_path, name, monkeypatch,
                                                                    capsys):
    (tmp_path / "blocker").write_text("not a folder\n")
    (tmp_path / "a-folder").mkdir()
    if "default store" in name:
        (tmp_path / "mlartifacts").write_text("not a folder\n")
    assert IN_A_PROCESS <= set(cases(tmp_path))
    args, needles = cases(tmp_path)[name]
    if name in IN_A_PROCESS:
        proc = run_cli(tmp_path, *args)
        code, stderr = proc.returncode, proc.stderr
    else:
        code, stderr = run_in_process(tmp_path, monkeypatch, capsys, *args)
    assert code == EXIT_BAD_INPUT, stderr[-3000:]
    assert "Traceback" not in stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("sparkdl-tune:")]
    assert len(lines) == 1 and lines[0].startswith("sparkdl-tune: error: "), lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "cannot be written" in lines[0] and "choose another" in lines[0]
    assert not any(s in stderr for s in SPARK_LINES), stderr[-3000:]
    # no Spark application, no MLflow store, nothing written around the blocker
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["blocker", "a-folder", *(["mlartifacts"] if "default store" in name
                                                     else [])]), left


def test_the_notebook_api_checks_before_spark_and_the_store(tmp_path):
    """The Python API asks the same questions: tune's output folder, prepare's and report's
    destinations; the error is the CLI's ConfigError (exit code 2), the store stays unmade."""
    import sparkdl_tune as sdt
    from sparkdl_tune.config.schema import MlflowSettings

    blocker = tmp_path / "blocker"
    blocker.write_text("x\n")
    db = tmp_path / "mlflow.db"
    cfg = sdt.load_config(str(ROOT / "conf"), files=[JOB], overrides=[
        f"search.output_dir={blocker}", f"mlflow.tracking_uri=sqlite:///{db}",
        f"data.path={tmp_path / 'no-such-dataset'}"])
    with pytest.raises(ConfigError, match="search.output_dir: .* is a file") as tuned:
        sdt.tune(cfg)
    assert tuned.value.exit_code == EXIT_BAD_INPUT
    with pytest.raises(ConfigError, match=r"^out_dir: the report folder .* exists as a file"):
        sdt.report(MlflowSettings(tracking_uri=f"sqlite:///{db}"), "some-search", str(blocker))
    source = sdt.SyntheticRegressionSource(rows=100)
    with pytest.raises(ConfigError, match=r"^--out: .* its parent .* is a file"):
        sdt.prepare(source, str(blocker / "dataset"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_a_writable_place_passes_and_nothing_is_created(tmp_path):
    from sparkdl_tune.config.writable import check_file, check_folder, local_path

    check_folder("x", str(tmp_path / "a" / "b" / "c"))
    check_file("y", str(tmp_path / "a" / "s.json"))
    (tmp_path / "f").write_text("")
    check_file("y", str(tmp_path / "f"))  # an existing file is replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
    assert local_path("file:///a/b") == "/a/b" and local_path("s3://bucket/x") is None
    assert local_path("rel/dir") == "rel/dir"
