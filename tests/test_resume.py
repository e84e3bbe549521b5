"""Resume: a search killed with SIGKILL after some trials finished, rerun under the same name,
runs only the missing trials and ends with exactly the budget."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import tune_overrides

SPACE = {"model.units": {"choice": [[4], [8], [16], [32]]},
         "model.dropout": {"uniform": [0.0, 0.3]}}
BUDGET = 6


def trial_runs(tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("tests")
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], "tags.`sparkdl_tune.kind` = 'trial'")


def test_sigkill_then_resume_runs_no_finished_trial_twice(tiny_tabular, tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    cmd = [exe, "tune", "conf/jobs/fashion_tune.yaml",
           *tune_overrides(tiny_tabular, tmp_path, SPACE, search__name="resumable",
                           search__max_trials=BUDGET, search__algorithm="tpe",
                           training__epochs=12),
           "spark.master=local[2]", "spark.conf.spark.ui.enabled=false"]
    log_file = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300  # a hang guard only
        # FINISHED: the monitor creates a trial's run before it logs the rest; a run merely
        # created is a trial still being recorded, not a finished one
        while sum(r.info.status == "FINISHED" for r in trial_runs(tmp_path)) < 2:
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no two trials finished in time"
            time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its Spark JVM, mid-search
        proc.wait()
    before = {r.info.run_id: r.data.tags["sparkdl_tune.trial"] for r in trial_runs(tmp_path)}
    assert 2 <= len(before) < BUDGET, "the search must be cut off part-way"

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming 'resumable' with {len(before)} finished trials" in second.stderr

    after = trial_runs(tmp_path)
    numbers = sorted(int(r.data.tags["sparkdl_tune.trial"]) for r in after)
    assert numbers == list(range(BUDGET))  # the count continued and ends at the budget
    assert set(before) <= {r.info.run_id for r in after}  # finished trials were kept...
    assert len(after) == BUDGET  # ...and not run again
    assert f"trial {len(before) + 1}/{BUDGET}" in second.stderr
    print(f"\nkilled after {len(before)} finished trials; resumed run added "
          f"{BUDGET - len(before)}; trial numbers {numbers}")
