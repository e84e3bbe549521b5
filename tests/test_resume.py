"""Resume: a search killed with SIGKILL after some trials finished, rerun under the same name,
runs only the missing trials and ends with exactly the budget; its final model is reused only
while the final settings are the same."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import child_runs, tune_overrides

SPACE = {"model.units": {"choice": [[4], [8], [16], [32]]},
         "model.dropout": {"uniform": [0.0, 0.3]}}
BUDGET = 6


def trial_runs(tmp_path, while_created=False):
    """The trial runs in the test's store; ``while_created``: [] while the search is still
    creating the store (two processes running MLflow's schema migration at once collide)."""
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
        exp = client.get_experiment_by_name("tests")
    except Exception as exc:
        if while_created and ("already exists" in str(exc) or "migration" in str(exc)):
            return []
        raise
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], "tags.`sparkdl_tune.kind` = 'trial'")


# asha: a grid of learning rates, good ones first, so later trials are behind at rung 1 and
# get pruned whatever the machine's speed (1e-5 and 1e-6 barely move a loss in an epoch)
ASHA_SPACE = {"training.learning_rate": {"choice": [0.05, 0.02, 1e-5, 1e-6, 2e-5, 3e-6]}}


# asha in the default suite (it also resumes the scheduler's state) on each search engine (the
# optuna study is rebuilt from the MLflow runs); fifo in make test-slow
@pytest.mark.parametrize("scheduler,engine", [
    pytest.param("fifo", "hyperopt", marks=pytest.mark.slow), ("asha", "hyperopt"),
    ("asha", "optuna")])
def test_sigkill_then_resume_runs_no_finished_trial_twice(tiny_tabular, tmp_path, scheduler,
                                                          engine):
    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    extra = dict(search__algorithm="tpe", training__epochs=12)
    space = SPACE
    if scheduler == "asha":
        space = ASHA_SPACE
        # no retrain and no report: what a resume keeps is the trials (the final model's
        # reuse is the next test's)
        extra = dict(search__algorithm="grid", training__epochs=9, search__scheduler="asha",
                     search__pruning__min_epochs=1, search__metric="val_loss",
                     search__retrain="false", search__report="false")
    extra["search__engine"] = engine
    cmd = [exe, "tune", "conf/jobs/fashion_tune.yaml",
           *tune_overrides(tiny_tabular, tmp_path, space, search__name="resumable",
                           search__max_trials=BUDGET, **extra),
           "spark.master=local[2]", "spark.conf.spark.ui.enabled=false"]

    def recorded():  # finished or pruned (FINISHED), failed: what a resume keeps
        return {r.info.run_id: r for r in trial_runs(tmp_path, while_created=True)
                if r.info.status in ("FINISHED", "FAILED")}

    def pruned(runs):
        return {k for k, r in runs.items() if r.data.tags.get("sparkdl_tune.status") == "pruned"}

    log_file = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300  # a hang guard only
        # the store is the search's to create (MLflow's schema migration): read it once the
        # search says it is set up
        while "MLflow: " not in (tmp_path / "first.log").read_text():
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the search never set MLflow up"
            time.sleep(0.3)
        # asha: go on until a pruned trial is recorded too (the third, at the latest)
        while len(recorded()) < 2 or (scheduler == "asha" and not pruned(recorded())):
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no two trials finished in time"
            time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its Spark JVM, mid-search
        proc.wait()
    before = recorded()
    assert 2 <= len(before) < BUDGET, "the search must be cut off part-way"

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming 'resumable' with {len(before)} finished trials" in second.stderr

    after = trial_runs(tmp_path)  # the run of a trial that was running at the kill is gone
    numbers = sorted(int(r.data.tags["sparkdl_tune.trial"]) for r in after)
    assert numbers == list(range(BUDGET))  # the count continued and ends at the budget
    assert set(before) <= {r.info.run_id for r in after}  # recorded trials were kept...
    assert len(after) == BUDGET  # ...and not run again
    assert all(r.info.status == "FINISHED" for r in after)  # none left RUNNING
    assert f"trial {len(before) + 1}/{BUDGET}" in second.stderr
    kept_pruned = pruned(before)
    assert kept_pruned <= pruned({r.info.run_id: r for r in after})  # still pruned
    if scheduler == "asha":
        assert kept_pruned
        assert "pruned" in second.stderr  # the progress line counts them
    print(f"\n{scheduler}, {engine}: killed after {len(before)} recorded trials "
          f"({len(kept_pruned)} "
          f"pruned); resumed run added {BUDGET - len(before)}; trial numbers {numbers}")


def test_a_final_run_is_reused_only_with_the_same_final_settings_and_keeps_its_evaluation(
        spark, tiny_tabular, tmp_path):
    from mlflow.tracking import MlflowClient

    from sparkdl_tune.config.loader import load_config
    from sparkdl_tune.search.tuner import tune

    def config(final_epochs):
        return load_config(None, overrides=tune_overrides(
            tiny_tabular, tmp_path, {"model.units": {"choice": [[4], [8]]}},
            search__name="final-kept", search__algorithm="grid", search__max_trials=2,
            search__report="false", training__epochs=1, search__final_epochs=final_epochs))

    def plain(value):  # as MLflow's evaluation.json holds it
        return json.loads(json.dumps(value))

    first = tune(config(1), spark)
    parent = first["parent_run_id"]
    evaluation = first["final"]["evaluation"]
    assert evaluation and first["final"]["epochs"] == 1

    # the driver died after the retrain, before the search was marked finished
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    client.set_tag(parent, "sparkdl_tune.final_run_id", "")
    reused = tune(config(1), spark)
    assert reused["final"]["run_id"] == first["final"]["run_id"] and reused["final"]["reused"]
    assert reused["final"]["evaluation"] == plain(evaluation)  # read back from the run
    assert len(child_runs(tmp_path, parent, "final")) == 1

    # a finished search rerun with another final_epochs: the final model only is retrained
    longer = tune(config(2), spark)
    assert not longer.get("already_finished") and longer["parent_run_id"] == parent
    assert longer["final"]["run_id"] != first["final"]["run_id"]
    assert longer["final"]["epochs"] == 2 and longer["final"]["evaluation"]
    finals = child_runs(tmp_path, parent, "final")
    assert len(finals) == 2  # the earlier result stays
    assert {r.data.params["search.final_epochs"] for r in finals} == {"1", "2"}
    assert len(child_runs(tmp_path, parent, "trial")) == 2  # no trial ran again
    assert client.get_run(parent).data.tags["sparkdl_tune.final_run_id"] == \
        longer["final"]["run_id"]

    assert tune(config(2), spark).get("already_finished") is True  # same again: done
