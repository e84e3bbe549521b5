"""k-fold cross-validation per trial (issue 12 item 2): the folds of train+validation, the
score rule, bad settings, and real tunes on local[2] whose trials record each fold."""

from __future__ import annotations

import json
import math

import pytest
from conftest import child_runs, tune_overrides

from sparkdl_tune.errors import ConfigError

LR_SPACE = {"training.learning_rate": {"loguniform": [3e-3, 3e-2]}}


def _prepared(spark, dataset, tmp_path):
    from sparkdl_tune.config.schema import DataSettings
    from sparkdl_tune.driver.dataset import read_manifest
    from sparkdl_tune.driver.materialise import training_data

    settings = DataSettings(path=str(dataset), cache_url=str(tmp_path / "cache"))
    return training_data(spark, settings, read_manifest(str(dataset)))


def _rows(spark, split) -> list[tuple]:
    df = spark.read.parquet(*split.files)
    return sorted((tuple(float(v) for v in r["features"]), float(r["label"]))
                  for r in df.collect())


def _stamps(folds) -> dict[str, int]:
    """Each fold file's modification time (a rewrite changes them)."""
    import os

    return {u: os.stat(u[len("file://"):]).st_mtime_ns
            for f in folds for u in f.splits["validation"].files}


def test_folds_are_disjoint_cover_train_and_validation_and_are_reused(spark, tiny_tabular,
                                                                      tmp_path):
    from sparkdl_tune.driver.folds import fold_data

    data = _prepared(spark, tiny_tabular, tmp_path)
    folds = fold_data(spark, data, 3, seed=7)
    assert len(folds) == 3
    everything = sorted(_rows(spark, data.splits["train"])
                        + _rows(spark, data.splits["validation"]))
    held = [_rows(spark, f.splits["validation"]) for f in folds]
    assert sorted(r for h in held for r in h) == everything  # every row in exactly one fold
    for i, fold in enumerate(folds):
        assert fold.splits["validation"].rows == len(held[i]) > 0
        assert fold.splits["train"].rows + len(held[i]) == len(everything)
        fitted = _rows(spark, fold.splits["train"])
        assert not set(fitted) & set(held[i])
        assert sorted(fitted + held[i]) == everything
        assert fold.splits["test"] is data.splits["test"]
        assert len(fold.splits["validation"].files) >= 2  # a shard per Horovod rank
        assert fold.feature_names == data.feature_names and fold.input_dim == data.input_dim
    sizes = [len(h) for h in held]
    assert all(abs(n - len(everything) / 3) < 0.25 * len(everything) / 3 for n in sizes)
    # the same inputs: the same folders, nothing written again
    stamps = _stamps(folds)
    again = fold_data(spark, data, 3, seed=7)
    assert _stamps(again) == stamps
    assert [f.splits["validation"].files for f in again] == \
        [f.splits["validation"].files for f in folds]
    assert [f.splits["validation"].rows for f in again] == sizes
    # another k: new folds
    assert fold_data(spark, data, 2, seed=7)[0].splits["validation"].files != \
        folds[0].splits["validation"].files
    sub = folds[0].select(["f1", "f3"])  # a feature subset: columns of the same fold copies
    assert sub.columns == (0, 2) and sub.input_dim == 2 and sub.splits is folds[0].splits


def test_too_many_folds_for_the_rows_is_a_config_error(spark, tiny_tabular, tmp_path):
    from sparkdl_tune.driver.folds import fold_data

    data = _prepared(spark, tiny_tabular, tmp_path)
    with pytest.raises(ConfigError, match=r"search.cv_folds is 400 .*lower search.cv_folds"):
        fold_data(spark, data, 400)


def test_mean_and_std_of_fold_scores():
    from sparkdl_tune.search.folds import combine_histories, mean_std

    assert mean_std([0.8, 0.9, 1.0]) == (pytest.approx(0.9), pytest.approx(math.sqrt(0.02 / 3)))
    assert mean_std([0.5]) == (0.5, 0.0)
    hist = combine_histories([{"val_loss": [3.0, 2.0, 1.0], "loss": [1.0, 1.0, 1.0]},
                              {"val_loss": [1.0, 0.0], "loss": [3.0, 3.0]}])
    assert hist == {"val_loss": [2.0, 1.0, 1.0], "loss": [2.0, 2.0, 1.0]}


def test_folds_at_once_follow_the_free_slots():
    from sparkdl_tune.search.folds import slots_per_trial

    assert slots_per_trial(3, 2, 1) == 2  # local[2], one trial (or num_proc 1) at a time
    assert slots_per_trial(3, 2, 2) == 1  # two trials at once, or a 2-rank Horovod trial
    assert slots_per_trial(3, 16, 2) == 3 and slots_per_trial(5, 1, 4) == 1
    assert slots_per_trial(3, 16, 2, horovod=True) == 1  # Horovod: from the main thread only


def test_a_failed_fold_fails_the_trial_naming_the_fold():
    import threading

    from sparkdl_tune.search.folds import FoldFailed, combine, run_folds
    from sparkdl_tune.search.objective import _reason

    class Data:
        def rows(self, split):
            return 10

    seen = set()

    def train(i, data):
        seen.add(threading.current_thread().name)
        if i == 1:
            raise MemoryError("no room")
        return None

    runs = run_folds([Data()] * 3, train, lambda r: 0.5, slots=2)
    assert [r.fold for r in runs] == [0, 1, 2] and runs[1].error is not None
    assert all(r.end >= r.start for r in runs) and len(seen) <= 2
    with pytest.raises(FoldFailed) as err:
        combine(runs, "val_accuracy")
    assert _reason(err.value) == "fold 2 of 3: out of memory: MemoryError: no room"


@pytest.mark.parametrize("extra,needle", [
    ({"search.cv_folds": 1}, "cv_folds is 1; use an integer of 2 or more"),
    ({"search.cv_folds": "true"}, "'search.cv_folds' must be an integer, got True"),
    ({"search.cv_folds": 3, "search.scheduler": "asha"},
     "search.cv_folds (3) with search.scheduler asha"),
    ({"search.cv_folds": 3, "search.baseline": "true"},
     "search.cv_folds (3) with search.baseline"),
    ({"search.cv_folds": 4000}, "search.cv_folds is 4000 but train+validation has"),
])
def test_bad_cv_settings_exit_2_in_one_line_before_training(tiny_tabular, tmp_path, capsys,
                                                            spark, extra, needle):
    from sparkdl_tune.cli import main

    args = ["tune", "conf/jobs/fashion_tune.yaml",
            *tune_overrides(tiny_tabular, tmp_path, LR_SPACE, search__name="badcv",
                            **{k.replace(".", "__"): v for k, v in extra.items()})]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sparkdl-tune")]
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "out").exists()


# -- acceptance 2: real tunes on local[2] ------------------------------------------------------
def _overlaps(folds: list[dict]) -> list[tuple[int, int, float]]:
    """(fold a, fold b, seconds both ran) for every pair of folds that ran at the same time."""
    out = []
    for i, a in enumerate(folds):
        for b in folds[i + 1:]:
            both = min(a["end"], b["end"]) - max(a["start"], b["start"])
            if both > 0:
                out.append((a["fold"], b["fold"], both))
    return out


@pytest.mark.parametrize("mode,extra", [
    # one trial at a time: its folds take both slots, in threads of the trial's Spark task (one
    # trial shows it all: a second one, a Spark job and a worker's TensorFlow import more,
    # added ~10 s and no assertion)
    ("parallel", {"search.parallelism": 1, "search.max_trials": 1}),
    # the same on the second search engine
    pytest.param("parallel", {"search.parallelism": 1, "search.max_trials": 1,
                              "search.engine": "optuna"}, id="parallel-optuna"),
    # driver-side trials, a fold per slot in driver threads (~30 s more: make test-slow)
    pytest.param("distributed", {"execution.num_proc": 1, "search.max_trials": 3},
                 marks=pytest.mark.slow),
])
def test_cv_tune_records_each_fold_and_mean_std_for_every_trial(spark, tiny_tabular, tmp_path,
                                                                 mode, extra):
    from sparkdl_tune.config.loader import load_config
    from sparkdl_tune.driver.dataset import read_manifest
    from sparkdl_tune.search.tuner import tune

    metric = "val_accuracy"
    rows = read_manifest(str(tiny_tabular)).rows
    total = rows["train"] + rows["validation"]
    # a feature-subset dimension too: each fold reads its columns from the one fold copy
    space = {**LR_SPACE, "data.feature_columns": {"subset": [f"f{i}" for i in range(1, 9)],
                                                  "min": 5}}
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, space, search__name=f"cv-{mode}", search__cv_folds=3,
        search__execution_mode=mode, search__algorithm="random",
        search__report="true", **{k.replace(".", "__"): v for k, v in extra.items()}))
    summary = tune(cfg, spark)
    trials = extra["search.max_trials"]
    assert summary["trials"] == trials and summary["failed"] == 0
    runs = child_runs(tmp_path, summary["parent_run_id"])
    assert len(runs) == trials
    shown = []
    for run in sorted(runs, key=lambda r: int(r.data.tags["sparkdl_tune.trial"])):
        m = run.data.metrics
        scores = [m[f"cv_fold_{i}_{metric}"] for i in (1, 2, 3)]
        mean, std = m[f"cv_mean_{metric}"], m[f"cv_std_{metric}"]
        assert mean == pytest.approx(sum(scores) / 3)
        assert std == pytest.approx(math.sqrt(sum((s - mean) ** 2 for s in scores) / 3))
        assert m["objective"] == pytest.approx(mean) and m["cv_folds"] == 3
        folds = json.loads(run.data.tags["sparkdl_tune.folds"])
        assert [f["fold"] for f in folds] == [1, 2, 3]
        assert [f["score"] for f in folds] == pytest.approx(scores)
        assert all(f["end"] > f["start"] and f["epochs"] == 2 and len(f["curve"]) == 2
                   for f in folds)
        assert sum(f["validation_rows"] for f in folds) == total  # train+validation, once
        overlap = _overlaps(folds)
        assert overlap, folds  # two slots free: two folds of the trial ran side by side
        shown.append((int(run.data.tags["sparkdl_tune.trial"]) + 1, scores, mean, std,
                      [(f["fold"], f["start"], f["end"]) for f in folds], overlap))
    cv = summary["cv"]
    assert cv["folds"] == 3 and len(cv["trials"]) == trials
    assert cv["best"]["mean"] == pytest.approx(summary[f"best_{metric}"])
    assert summary["final"]["test_metrics"]  # the retrain: unchanged, on train+validation
    page = (tmp_path / "out" / f"cv-{mode}" / "report" / "report.html").read_text()
    assert "mean ± std of 3 folds" in page
    on_disk = json.loads((tmp_path / "out" / f"cv-{mode}" / "summary.json").read_text())
    assert on_disk["cv"]["trials"] == cv["trials"]
    for trial, scores, mean, std, times, overlap in shown:  # the evidence, with pytest -s
        t0 = min(t[1] for t in times)
        print(f"[{mode}] trial {trial}: folds {[round(s, 4) for s in scores]} -> mean "
              f"{mean:.4f} ± {std:.4f}; fold intervals (s from the trial's first start) "
              f"{[(f, round(a - t0, 2), round(b - t0, 2)) for f, a, b in times]}; "
              f"overlapping pairs {[(a, b, round(s, 2)) for a, b, s in overlap]}")


@pytest.mark.slow  # two Horovod jobs of 2 ranks (~40 s): make test-slow
def test_cv_tune_of_horovod_trials_trains_its_folds_one_after_the_other(spark, tiny_tabular,
                                                                         tmp_path):
    from sparkdl_tune.config.loader import load_config
    from sparkdl_tune.search.tuner import tune

    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, LR_SPACE, search__name="cv-horovod", search__cv_folds=2,
        search__execution_mode="distributed", execution__num_proc=2, search__max_trials=1,
        search__retrain="false", search__report="false"))
    summary = tune(cfg, spark)
    assert summary["trials"] == 1 and summary["failed"] == 0
    (run,) = child_runs(tmp_path, summary["parent_run_id"])
    assert run.data.metrics["num_proc"] == 2 and run.data.metrics["cv_folds"] == 2
    folds = json.loads(run.data.tags["sparkdl_tune.folds"])
    assert [f["fold"] for f in folds] == [1, 2] and not _overlaps(folds)  # main thread only
    assert run.data.metrics["objective"] == pytest.approx(sum(f["score"] for f in folds) / 2)
