"""A search is its definition: a changed rerun is refused (exit 2) unless extended; `tune`
prints exactly one JSON document; the final model carries no validation metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import tune_overrides

from sparkdl_tune.cli import main
from sparkdl_tune.config.loader import load_config
from sparkdl_tune.reporting.search import load_search

SPACE = {"training.learning_rate": {"loguniform": [1e-3, 3e-2]},
         "model.units": {"choice": [[8], [16]]}}


def runs(tmp_path, parent_run_id, kind):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("tests")
    return client.search_runs([exp.experiment_id],
                              f"tags.`mlflow.parentRunId` = '{parent_run_id}' and "
                              f"tags.`sparkdl_tune.kind` = '{kind}'")


def errors(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sparkdl-tune")]


def show(request, capsys, text: str) -> None:
    """With -s, print past the capsys capture (without mixing into the captured output)."""
    if request.config.getoption("capture") == "no":
        with capsys.disabled():
            print(text)


def test_tune_stdout_is_one_json_document_and_the_final_run_has_no_validation_metrics(
        tiny_tabular, tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    summary_file = tmp_path / "summary.json"
    proc = subprocess.run(
        [exe, "tune", "conf/jobs/fashion_tune.yaml", "--summary", str(summary_file),
         *tune_overrides(tiny_tabular, tmp_path, SPACE, search__name="piped",
                         search__max_trials=2, search__report="false"),
         "spark.master=local[2]", "spark.conf.spark.ui.enabled=false"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # the whole of stdout, nothing before or after it
    assert json.loads(summary_file.read_text()) == summary
    assert "Epoch 2/2" in proc.stderr  # Keras's epoch lines went to stderr
    final = runs(tmp_path, summary["parent_run_id"], "final")[0]
    assert "test_accuracy" in final.data.metrics
    assert not [k for k in final.data.metrics if k.startswith("val_")], final.data.metrics
    trial = runs(tmp_path, summary["parent_run_id"], "trial")[0]
    assert "val_accuracy" in trial.data.metrics  # trials still validate on validation rows
    print(f"\nstdout parsed as one JSON document ({len(proc.stdout)} chars); final run metrics: "
          f"{sorted(final.data.metrics)}")


def test_a_changed_search_is_refused_and_extend_runs_only_the_new_trials(spark, tiny_tabular,
                                                                          tmp_path, capsys,
                                                                          request):
    def args(space=SPACE, **extra):
        return ["tune", "conf/jobs/fashion_tune.yaml",
                *tune_overrides(tiny_tabular, tmp_path, space, search__name="grown",
                                search__report="false", **extra)]

    assert main(args(search__max_trials=2)) == 0
    first = json.loads(capsys.readouterr().out)
    before = {r.info.run_id for r in runs(tmp_path, first["parent_run_id"], "trial")}
    assert len(before) == 2

    wider = {**SPACE, "model.units": {"choice": [[8], [32]]}}
    assert main(args(wider, search__max_trials=2)) == 2
    err = errors(capsys)
    assert len(err) == 1 and "search.space.model.units" in err[0], err
    assert "new search.name" in err[0] and "search.resume=extend" in err[0], err
    show(request, capsys, f"\nchanged space: {err[0]}")

    assert main(args(search__max_trials=3)) == 2  # a larger budget is a choice too
    err = errors(capsys)
    assert len(err) == 1 and "search.max_trials: 2 -> 3" in err[0], err
    show(request, capsys, f"larger budget: {err[0]}")

    assert main(args(wider, search__max_trials=3, search__resume="extend")) == 2
    err = errors(capsys)
    assert len(err) == 1 and "only its budget" in err[0] and "model.units" in err[0], err
    assert len(runs(tmp_path, first["parent_run_id"], "trial")) == 2  # nothing ran meanwhile
    show(request, capsys, f"extend with a changed space: {err[0]}")

    assert main(args(search__max_trials=3, search__resume="extend")) == 0
    grown = json.loads(capsys.readouterr().out)
    assert grown["parent_run_id"] == first["parent_run_id"]
    assert grown["trials"] == 3 and not grown.get("already_finished")
    assert first["max_trials"] == 2 and grown["max_trials"] == 3  # the budget now
    from mlflow.tracking import MlflowClient

    parent = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db").get_run(
        first["parent_run_id"])
    assert parent.data.tags["sparkdl_tune.max_trials"] == "3"
    assert parent.data.params["search.max_trials"] == "2"  # MLflow params are immutable
    settings = load_config(None, overrides=[f"mlflow.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
                                            "mlflow.experiment=tests"]).mlflow
    assert load_search(settings, "grown").max_trials == 3  # what the report shows
    after = {r.info.run_id for r in runs(tmp_path, first["parent_run_id"], "trial")}
    assert before < after and len(after - before) == 1  # only the new trial ran
    finals = runs(tmp_path, first["parent_run_id"], "final")
    if grown["best_trial"] == first["best_trial"]:  # the same best: its final model is reused
        assert len(finals) == 1 and grown["final"]["run_id"] == first["final"]["run_id"]
    else:  # a new best: retrained beside the earlier result
        assert len(finals) == 2
    show(request, capsys, f"extend: {len(before)} trials kept, {len(after - before)} new, "
                 f"{grown['trials']} in all")

    assert main(args(search__max_trials=3, search__resume="extend")) == 0  # same again: done
    again = json.loads(capsys.readouterr().out)
    assert again["already_finished"] is True
    assert len(runs(tmp_path, first["parent_run_id"], "trial")) == 3
