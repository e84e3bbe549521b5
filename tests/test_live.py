"""Trials that talk back: per-epoch reports reach the driver over the report server, show up in
the trial's MLflow run while it runs, and a scheduler's stop ends a trial as *pruned*."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from conftest import RunningTrials, child_runs, tune_overrides

from sparkdl_tune.config.loader import load_config
from sparkdl_tune.executor.reporter import Reporter
from sparkdl_tune.search.report_server import ReportServer
from sparkdl_tune.search.tuner import tune

SPACE = {"training.learning_rate": {"loguniform": [1e-3, 1e-1]}}


def test_a_report_reaches_the_driver_and_its_answer_comes_back():
    seen = []

    def handle(message):
        seen.append(message)
        return {"stop": True, "reason": "behind"} if message.get("epoch") == 2 else {}

    with ReportServer(handle, "127.0.0.1") as server:
        target = server.address.for_trial("k1", {"a": 1})
        reporter = Reporter(target)
        assert reporter.send("begin", params={"a": 1}) == {"stop": False, "reason": ""}
        assert reporter.send("epoch", epoch=1, metrics={"loss": 0.5})["stop"] is False
        assert reporter.send("epoch", epoch=2, metrics={"loss": float("nan")}) == {
            "stop": True, "reason": "behind"}
        reporter.close()
        # a stranger's line (wrong token) is dropped with its connection; nothing reaches us
        with socket.create_connection(("127.0.0.1", target.port), timeout=5) as sock:
            sock.sendall(b'{"token": "wrong", "key": "x", "event": "epoch"}\n')
            assert sock.makefile("rb").readline() == b""
    assert [m["event"] for m in seen] == ["begin", "epoch", "epoch"]
    assert seen[2]["metrics"] == {"loss": None}  # NaN travels as null
    assert all(m["key"] == "k1" for m in seen)


def test_an_unreachable_driver_never_fails_the_trial(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    from sparkdl_tune.spec.report import ReportTo

    reporter = Reporter(ReportTo("127.0.0.1", port, "t", "k"))
    assert reporter.send("epoch", epoch=1, metrics={}) == {}
    assert reporter.broken and reporter.send("epoch", epoch=2, metrics={}) == {}
    assert "could not report to the driver" in capsys.readouterr().err


def _client(tmp_path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")


# the 2-rank case is make test-slow's (~45 s); in the default suite the 2-rank trials' reports
# reach the driver, and each epoch their MLflow run once, in the distributed ASHA test below
@pytest.mark.parametrize("mode,num_proc,runner", [
    ("parallel", 1, "sparktrials"),
    pytest.param("distributed", 2, "sparktrials", marks=pytest.mark.slow),
    ("parallel", 1, "executors")])
def test_a_running_trial_shows_its_epochs_in_mlflow(spark, tiny_tabular, tmp_path, mode,
                                                    num_proc, runner):
    epochs = 25
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, SPACE, search__name=f"live-{mode}", search__max_trials=2,
        search__execution_mode=mode, execution__num_proc=num_proc, search__runner=runner,
        search__retrain="false",
        search__report="false", search__algorithm="random", training__epochs=epochs,
        search__metric="val_loss"))
    with RunningTrials(f"sqlite:///{tmp_path}/mlflow.db", "tests") as sightings:
        summary = tune(cfg, spark)
    assert summary["trials"] == 2 and summary["failed"] == 0
    assert sightings, "no running trial run with epoch metrics was seen"
    run_id, steps = sightings[0]
    assert 1 <= steps < epochs  # seen mid-training, not written at the end
    run = _client(tmp_path).get_run(run_id)  # the same run became the finished trial
    assert run.info.status == "FINISHED"
    assert run.data.tags["sparkdl_tune.status"] == "finished"
    history = _client(tmp_path).get_metric_history(run_id, "val_loss")
    assert sorted(m.step for m in history) == list(range(epochs))  # every epoch exactly once
    print(f"\n{mode}: trial run {run_id[:8]} seen RUNNING with {steps} of {epochs} epochs "
          f"logged ({len(sightings)} sightings)")
    trials = _client(tmp_path).search_runs(
        [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{summary['parent_run_id']}'")
    assert len(trials) == 2  # no second run for a trial that reported live


# one runner in the default suite (the warm executors); SparkTrials' is make test-slow's: its
# reports and live runs are the running-trial test's, its pruned records the resume test's
@pytest.mark.parametrize("runner,engine", [
    pytest.param("sparktrials", "hyperopt", marks=pytest.mark.slow), ("executors", "hyperopt"),
    ("executors", "optuna")])
def test_asha_prunes_trials_and_records_them_as_pruned(spark, tiny_tabular, tmp_path, runner,
                                                       engine):
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, SPACE, search__name="asha", search__max_trials=8,
        search__execution_mode="parallel", search__algorithm="random", search__runner=runner,
        search__engine=engine,
        search__scheduler="asha", search__pruning__min_epochs=1,
        search__pruning__max_epochs=6, search__metric="val_loss", search__report="true"))
    summary = tune(cfg, spark)
    assert summary["trials"] == 8 and summary["failed"] == 0
    assert summary["scheduler"] == "asha" and summary["pruned"] >= 1
    on_disk = json.loads((tmp_path / "out" / "asha" / "summary.json").read_text())
    assert on_disk["pruned"] == summary["pruned"]
    pruned = {p["trial"]: p for p in on_disk["pruned_trials"]}
    assert len(pruned) == summary["pruned"]
    assert all(p["epoch"] in (1, 3) and p["rung"] == p["epoch"] and p["score"] > 0
               for p in pruned.values()), pruned
    client = _client(tmp_path)
    runs = client.search_runs([client.get_experiment_by_name("tests").experiment_id],
                              f"tags.`mlflow.parentRunId` = '{summary['parent_run_id']}' and "
                              "tags.`sparkdl_tune.kind` = 'trial'")
    assert len(runs) == 8
    for run in runs:
        number = int(run.data.tags["sparkdl_tune.trial"]) + 1
        status = run.data.tags["sparkdl_tune.status"]
        assert run.info.status == "FINISHED"  # pruned is not failed
        if number in pruned:
            assert status == "pruned"
            assert run.data.tags["sparkdl_tune.pruned"].startswith(
                f"epoch {pruned[number]['epoch']}: ")
            assert run.data.metrics["epochs_run"] == pruned[number]["epoch"]
            assert "test_accuracy" not in run.data.metrics  # no test score for a pruned trial
        else:
            assert status == "finished" and run.data.metrics["epochs_run"] == 6
    # the best and the retrained trial trained its full epochs
    assert summary["best_trial"] not in pruned
    # the report: each trial's status and rung, and the rung table
    page = (tmp_path / "out" / "asha" / "report" / "report.html").read_text()
    assert "Scheduler rungs" in page and "pruned after epoch" in page
    assert summary["epochs_spent"] == sum(r.data.metrics["epochs_run"] for r in runs) < 8 * 6
    print(f"\nasha: {summary['pruned']} of 8 trials pruned at epochs "
          f"{sorted(p['epoch'] for p in pruned.values())}, {summary['epochs_spent']} epochs "
          f"spent (fifo: 48); best trial {summary['best_trial']} trained 6")


@pytest.mark.parametrize("backend,warm", [
    pytest.param("horovod", "true", marks=pytest.mark.requires_horovod),
    ("tf_distribute", "true"), pytest.param("tf_distribute", "false", marks=pytest.mark.slow)])
def test_asha_in_distributed_mode_stops_every_rank_at_the_same_epoch(spark, tiny_tabular,
                                                                    tmp_path, caplog, backend,
                                                                    warm):
    """Trials of 2 ranks (each engine; tf_distribute's on warm ranks and on a launch per
    trial): rank 0 asks the driver, both ranks stop after the same epoch (a rank that went on
    alone would wait on its allreduce: the trial would fail or never end)."""
    space = {"training.learning_rate": {"choice": [0.05, 1e-6, 2e-6]}}  # the last two: behind
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, space, search__name=f"asha-{backend}-{warm}",
        search__max_trials=20,
        search__execution_mode="distributed", execution__num_proc=2, execution__backend=backend,
        execution__warm=warm, search__algorithm="grid",
        search__scheduler="asha", search__pruning__min_epochs=1,
        search__pruning__max_epochs=4, search__metric="val_loss", search__retrain="false",
        search__report="false"))
    package_log = logging.getLogger("sparkdl_tune")  # (the CLI's set-up stops propagation)
    package_log.addHandler(caplog.handler)
    try:
        with caplog.at_level("INFO", logger="sparkdl_tune"):
            summary = tune(cfg, spark)
    finally:
        package_log.removeHandler(caplog.handler)
    assert summary["trials"] == 3 and summary["failed"] == 0
    assert [(p["trial"], p["epoch"], p["rung"]) for p in summary["pruned_trials"]] == [
        (2, 1, 1), (3, 1, 1)]
    assert summary["epochs_spent"] == 4 + 1 + 1
    # the progress line: the grid's real size (not max_trials), pruned count, epochs spent
    last = [r.getMessage() for r in caplog.records if "tune: trial 3/3 " in r.getMessage()]
    assert last and "(pruned after epoch 1)" in last[0], last
    assert "2 pruned, 0 failed | 6 epochs" in last[0], last[0]
    # rank 0's reports became the trials' MLflow runs: one run per trial (none added at the
    # end), each epoch it trained logged exactly once
    runs = child_runs(tmp_path, summary["parent_run_id"])
    assert len(runs) == 3
    for run in runs:
        trained = int(run.data.metrics["epochs_run"])
        history = _client(tmp_path).get_metric_history(run.info.run_id, "val_loss")
        assert sorted(m.step for m in history) == list(range(trained)), run.data.tags
    assert sorted(int(r.data.metrics["epochs_run"]) for r in runs) == [1, 1, 4]


def test_metric_values_keep_their_significant_digits():
    from sparkdl_tune.logs import number

    assert number(0.91234567) == "0.9123"
    assert number(5e-6) == "5e-06"
    assert number(123456789.0) == "1.235e+08"
    assert number(0) == "0.0000" and number(float("nan")) == "nan"


def test_the_driver_side_answers_from_the_scheduler_and_a_nan_stops_a_trial():
    """LiveTrials without a trial store (nothing to match, so nothing written to MLflow):
    reports go to the scheduler in order; a repeated epoch is taken once; NaN (null on the
    wire) stops the trial and keeps its epoch's place."""
    from sparkdl_tune.config.schema import PruningSettings
    from sparkdl_tune.search.live import LiveTrials
    from sparkdl_tune.search.schedulers import make_scheduler

    scheduler = make_scheduler("asha", PruningSettings(min_epochs=1), "min", 9, "val_loss")
    live = LiveTrials(None, "parent", "s", None, scheduler, "val_loss")
    try:
        assert live.handle({"key": "a", "event": "begin", "params": {"x": 1}}) == {}
        assert live.handle({"key": "a", "event": "epoch", "epoch": 1,
                            "metrics": {"val_loss": 0.5, "loss": 0.6}}) == {}
        assert live.handle({"key": "a", "event": "epoch", "epoch": 1,
                            "metrics": {"val_loss": 9.0}}) == {}  # repeated: ignored
        # b is behind a at rung 1 (the top third of 1 recorded goes on): stopped
        answer = live.handle({"key": "b", "event": "epoch", "epoch": 1,
                              "metrics": {"val_loss": 0.9}})
        assert answer["stop"] and "rung 1" in answer["reason"]
        answer = live.handle({"key": "a", "event": "epoch", "epoch": 2,
                              "metrics": {"val_loss": None, "loss": 0.4}})
        assert answer["stop"] and "NaN" in answer["reason"]
        trial = live.finish("a", 0)
        assert trial.curve == [0.5, None] and trial.pruned[0] == 2
        assert trial.history["loss"] == [0.6, 0.4] and len(trial.history["val_loss"]) == 2
        assert trial.run_id is None  # never matched to a store: the final record writes it
    finally:
        live.close()
