"""Trial records kept on local disk while the tracking server is away, and their replay.

Real MLflow clients: an http store on a port nothing listens on (the server "gone"), then a
sqlite store (the server "back"). The end-to-end case with a real `mlflow server` killed
mid-search is in tests/test_slow_mlflow_server.py.
"""

from __future__ import annotations

import functools
import json
import socket

import pytest

from sparkdl_tune.config.schema import MlflowSettings
from sparkdl_tune.tracking import store as tracking
from sparkdl_tune.tracking.journal import Journal
from sparkdl_tune.tracking.layout import TAG_KIND, TAG_TRIAL, TAG_VALS
from sparkdl_tune.tracking.outage import is_outage


@pytest.fixture
def gone(monkeypatch):
    """Settings of a tracking server nobody answers (a port just closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    return MlflowSettings(tracking_uri=f"http://127.0.0.1:{port}", experiment="tests")


@pytest.fixture
def back(tmp_path):
    return MlflowSettings(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="tests")


def record_of(number: int, parent: str) -> dict:
    return dict(run_name=f"trial-{number + 1:03d}", parent_run_id=parent,
                params={"model.units": [8]}, history={"val_loss": [0.9, 0.5, float("nan")]},
                summary={"objective": 0.5}, tags={TAG_KIND: "trial", TAG_TRIAL: number,
                                                  TAG_VALS: json.dumps({"u": [number]})},
                failure=None, status=None, run_id=None, logged={})


def trial_runs(settings, parent):
    return tracking.find_runs(settings, {TAG_KIND: "trial"}, parent_run_id=parent)


def test_an_unreachable_server_is_an_outage_and_a_refusal_is_not(gone, back):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    with pytest.raises(Exception) as unreachable:
        tracking.open_child_run(gone, "x", "0" * 32, {})
    assert is_outage(unreachable.value)
    tracking.setup(back)
    with pytest.raises(MlflowException) as refused:
        MlflowClient().get_run("f" * 32)
    assert not is_outage(refused.value)


def test_records_are_kept_while_the_server_is_away_then_replayed_exactly_once(gone, back,
                                                                              tmp_path):
    with tracking.start_run(back, "search") as parent:
        parent_id = parent.info.run_id
    naps = []
    journal = Journal(tmp_path / "out" / "pending-mlflow", sleep=naps.append)
    write = functools.partial(tracking.record_run, gone)
    assert journal.record(0, write, **record_of(0, parent_id)) is None
    assert naps == [1.0, 2.0, 4.0, 8.0]  # retried with backoff, then kept
    assert journal.outage
    assert journal.record(1, write, **record_of(1, parent_id)) is None
    assert naps == [1.0, 2.0, 4.0, 8.0]  # during the outage: tried once, kept at once
    assert [p.name for p in journal.pending()] == ["trial-00001.json", "trial-00002.json"]

    # the server is back; trial 2 had opened its run while it ran (it stays RUNNING)
    half = tracking.open_child_run(back, "trial-002", parent_id,
                                   {TAG_KIND: "trial", TAG_TRIAL: 1,
                                    TAG_VALS: json.dumps({"u": [1]})})
    assert journal.replay(back, parent_id) == 0
    runs = trial_runs(back, parent_id)
    assert sorted(int(r.data.tags[TAG_TRIAL]) for r in runs) == [0, 1]  # once each
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert half not in {r.info.run_id for r in runs}
    from mlflow import MlflowClient
    steps = MlflowClient().get_metric_history(runs[0].info.run_id, "val_loss")
    assert [m.step for m in sorted(steps, key=lambda m: m.step)] == [0, 1, 2]
    assert journal.pending() == [] and not journal.folder.exists()
    assert journal.replay(back, parent_id) == 0  # nothing twice
    assert len(trial_runs(back, parent_id)) == 2

    # a write that works ends the outage
    journal.outage = True
    assert journal.record(2, functools.partial(tracking.record_run, back),
                          **record_of(2, parent_id))
    assert not journal.outage and len(trial_runs(back, parent_id)) == 3


def test_a_replay_while_the_server_is_still_away_keeps_everything(gone, tmp_path):
    journal = Journal(tmp_path / "pending-mlflow", sleep=lambda s: None)
    journal.keep(0, record_of(0, "0" * 32))
    journal.keep(1, record_of(1, "0" * 32))
    assert journal.replay(gone, "0" * 32) == 2
    assert len(journal.pending()) == 2


def test_a_refusal_is_not_kept_it_fails(back, tmp_path):
    """Only an unreachable server is waited out; an error the server gave is raised."""
    journal = Journal(tmp_path / "pending-mlflow", sleep=lambda s: None)
    tracking.setup(back)
    bad = record_of(0, "f" * 32)  # no such parent run
    bad["run_id"] = "f" * 32  # no such run
    with pytest.raises(Exception) as refused:
        journal.record(0, functools.partial(tracking.record_run, back), **bad)
    assert not is_outage(refused.value)
    assert journal.pending() == []
