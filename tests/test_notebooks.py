"""The Databricks notebooks, run cell by cell on tiny data, and the public API they rely on.

A notebook runs as Databricks would run it: its code cells in order in one namespace,
``%run ./other`` cells running the other notebook in that same namespace, markdown cells
skipped. Parameters come from ``SPARKDL_NB_<NAME>`` environment variables (the notebooks'
fallback off Databricks), pointing at a tiny Fashion-MNIST-shaped dataset and a SQLite MLflow
store under a temporary folder.
"""

from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys

import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"
ALL = sorted(NOTEBOOKS.glob("*.py"))


def cells(path: pathlib.Path) -> list[str]:
    text = path.read_text()
    assert text.startswith(HEADER + "\n"), f"{path.name}: first line must be '{HEADER}'"
    return [c.strip("\n") for c in text[len(HEADER):].split(SEPARATOR)]


def is_magic(cell: str) -> bool:
    return cell.lstrip().startswith(MAGIC)


def run_notebook(path: pathlib.Path, namespace: dict) -> dict:
    """Execute ``path``'s code cells in ``namespace``; ``%run`` cells run the other notebook."""
    for number, cell in enumerate(cells(path), 1):
        if is_magic(cell):
            command = cell.splitlines()[0][len(MAGIC):].strip()
            if command.startswith("%run "):
                run_notebook(path.parent / (command.split(None, 1)[1] + ".py"), namespace)
            continue
        exec(compile(cell, f"{path.name} (cell {number})", "exec"), namespace)
    return namespace


# ---- format and public API: no Spark ----------------------------------------------------------

@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_is_databricks_source_that_only_uses_the_public_api(path):
    import sparkdl_tune

    used = set()
    for cell in cells(path):
        lines = [line for line in cell.splitlines() if line.strip()]
        magic = [line.startswith(MAGIC) for line in lines]
        assert all(magic) or not any(magic), f"{path.name}: a cell mixes code and # MAGIC lines"
        if any(magic):
            continue
        for node in ast.walk(ast.parse(cell)):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("sparkdl_tune"), \
                    f"{path.name}: 'from {node.module} import' reaches past the public API"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("sparkdl_tune.")
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "sdt"):
                used.add(node.attr)
    assert used <= set(sparkdl_tune.__all__), used - set(sparkdl_tune.__all__)


def test_import_is_light_and_every_public_name_resolves():
    code = ("import sys, sparkdl_tune as sdt\n"
            "heavy = sorted(m for m in ('tensorflow', 'pyspark', 'mlflow', 'numpy', 'hyperopt')"
            " if m in sys.modules)\n"
            "resolved = {n: type(getattr(sdt, n)).__name__ for n in sdt.__all__}\n"
            "import json; print(json.dumps([heavy, resolved]))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    heavy, resolved = json.loads(out.splitlines()[-1])
    assert heavy == []
    assert {"prepare", "train", "tune", "load_config", "get_spark", "validate_dataset"} \
        <= set(resolved)
    assert resolved["train"] == resolved["prepare"] == "function"
    assert resolved["FashionMnistSource"] == "type"


def test_public_functions_stay_functions_after_their_modules_load():
    import sparkdl_tune as sdt
    import sparkdl_tune.driver.preparation  # noqa: F401
    import sparkdl_tune.reporting  # noqa: F401
    from sparkdl_tune.driver.train import train
    from sparkdl_tune.search.tuner import tune

    assert sdt.train is train and sdt.tune is tune
    assert callable(sdt.prepare)
    assert sdt.prepare is sys.modules["sparkdl_tune.driver.preparation"].prepare
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        sdt.trian  # noqa: B018


# ---- the notebooks, in order, on tiny data ---------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tiny_fashion_dir, tmp_path_factory):
    """Notebook parameters for a tiny, quick run; everything is written under one folder."""
    work = tmp_path_factory.mktemp("notebooks")
    params = {
        "workdir": work,
        "source_dir": tiny_fashion_dir,
        "tracking_uri": f"sqlite:///{work}/mlflow.db",
        "experiment": "notebooks",
        "max_trials": 2,
        "trial_epochs": 1,
        "epochs": 1,
        "search_name": "nb-search",
        "model_name": "nb-model",
        # trials in-process on the driver (no Spark task start-up per trial)
        "overrides": "search.execution_mode=distributed",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in params.items():
            mp.setenv(f"SPARKDL_NB_{name.upper()}", str(value))
        yield work


@pytest.fixture(scope="module")
def prepared(spark, workdir):
    return run_notebook(NOTEBOOKS / "01_prepare.py", {"__name__": "__main__"})


@pytest.fixture(scope="module")
def tuned(prepared):
    return run_notebook(NOTEBOOKS / "02_tune.py", {"__name__": "__main__"})


@pytest.fixture(scope="module")
def registered(tuned):
    return run_notebook(NOTEBOOKS / "03_train_and_register.py", {"__name__": "__main__"})


def test_01_prepare_writes_the_dataset_with_the_active_session(spark, workdir, prepared):
    assert prepared["spark"] is spark  # no second session
    assert prepared["dbutils"] is None and prepared["display"] is print
    assert prepared["out"] == f"{workdir}/data/fashion-mnist"
    manifest = json.loads((workdir / "data" / "fashion-mnist" / "manifest.json").read_text())
    assert manifest["rows"] == {"train": 270, "validation": 30, "test": 100}
    assert manifest["layout"]["num_classes"] == 10
    assert prepared["manifest"].rows == manifest["rows"]


def test_02_tune_runs_the_budget_and_writes_best_params(workdir, tuned):
    summary = tuned["summary"]
    assert summary["search"] == "nb-search"
    assert summary["trials"] == 2 and summary["failed"] == 0
    assert summary["final"] is None  # retrain=false: notebook 3 trains the best
    assert set(summary["best_params"]) == set(_space_keys(tuned["cfg"].search.space_file))
    path = workdir / "out" / "tune" / "nb-search" / "best_params.json"
    assert tuned["best_params_path"] == str(path)
    assert json.loads(path.read_text()) == summary["best_params"]
    assert summary["report"] == str(path.parent / "report" / "report.html")
    assert pathlib.Path(summary["report"]).is_file()


def _space_keys(space_file: str) -> list[str]:
    import yaml

    return list(yaml.safe_load(pathlib.Path(space_file).read_text())["space"])


def test_03_trains_registers_and_predicts_with_the_registered_model(workdir, tuned,
                                                                    registered):
    from mlflow.tracking import MlflowClient

    best = tuned["summary"]["best_params"]
    cfg = registered["cfg"]
    assert list(cfg.model.units) == list(best["model.units"])
    assert cfg.training.learning_rate == pytest.approx(best["training.learning_rate"])
    result = registered["result"]
    assert result["epochs_run"] == 1 and result["registered_version"] == 1
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    version = client.get_model_version("nb-model", "1")
    assert version.run_id == result["run_id"]
    assert registered["model_uri"] == "models:/nb-model/1"
    assert registered["predictions"].shape == (5, 10)
    assert list(registered["table"].columns) == ["label", "predicted", "probability"]


def test_03_accepts_best_params_as_a_json_object(workdir, registered, monkeypatch):
    monkeypatch.setenv("SPARKDL_NB_BEST_PARAMS", '{"model.units": [8], "training.batch_size": 32}')
    monkeypatch.setenv("SPARKDL_NB_PREDICT_ROWS", "3")
    ns = run_notebook(NOTEBOOKS / "03_train_and_register.py", {"__name__": "__main__"})
    assert ns["cfg"].model.units == (8,) and ns["cfg"].training.batch_size == 32
    assert ns["result"]["registered_version"] == 2
    assert ns["predictions"].shape == (3, 10)
