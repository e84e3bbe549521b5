"""Feature-subset search (issue 12 item 3): the ``subset`` dimension, and a real tune that
finds the columns the target depends on while every trial reads the one materialised copy."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import tune_overrides

from sparkdl_tune.errors import ConfigError
from sparkdl_tune.search.algorithms.genetic import _crossover, mutate_value
from sparkdl_tune.search.space import SearchSpace, Subset, parse_spec

COLS = ["x1", "x2", "d1", "d2", "d3", "d4"]


def test_parse_decode_and_round_trip():
    spec = parse_spec({"subset": COLS, "min": 1})
    assert isinstance(spec, Subset) and (spec.min, spec.max) == (1, 6)
    assert spec.count() == 63 and spec.grid() == [float(k) for k in range(63)]
    assert spec.real(0) == ("x1",) and spec.real(6) == ("x1", "x2") and spec.real(62) == tuple(COLS)
    assert [spec.index_of(spec.real(k)) for k in range(63)] == list(range(63))
    assert len({spec.real(k) for k in range(63)}) == 63
    assert spec.to_val(["x2", "x1"]) == 6.0  # a point's names, any order
    space = SearchSpace({"data.feature_columns": {"subset": COLS, "min": 2, "max": 3}})
    points = space.grid_points()
    assert len(points) == 15 + 20
    assert {len(p["data.feature_columns"]) for p in points} == {2, 3}
    assert points[0] == {"data.feature_columns": ("x1", "x2")}
    assert space.decode({"data.feature_columns": [0]}) == {"data.feature_columns": ("x1", "x2")}


@pytest.mark.parametrize("raw, message", [
    ({"subset": COLS, "min": 7}, "subset min is 7 but there are 6 columns"),
    ({"subset": COLS, "min": 0}, "subset min is 0"),
    ({"subset": COLS, "min": 3, "max": 2}, "subset max is 2"),
    ({"subset": COLS, "maxx": 2}, "subset has unknown key 'maxx'"),
    ({"subset": ["x1", "x1"]}, "lists column 'x1' twice"),
    ({"subset": []}, "non-empty list of column names"),
    ({"subset": "x1"}, "non-empty list of column names"),
    ({"subset": COLS, "min": 1.5}, "subset min must be a finite integer"),
])
def test_bad_subsets_are_one_clear_line(raw, message):
    with pytest.raises(ConfigError, match=message) as err:
        SearchSpace({"data.feature_columns": raw})
    assert "\n" not in str(err.value) and "data.feature_columns" in str(err.value)


def test_sampling_and_genetic_operators_keep_min_and_max():
    rng = np.random.default_rng(0)
    for lo, hi in ((1, 6), (2, 2), (2, 4), (6, 6)):
        spec = Subset(COLS, lo, hi)
        space = SearchSpace({"data.feature_columns": spec, "model.dropout": {"uniform": [0, .5]}})
        seen = set()
        for _ in range(300):
            a = space.sample_vals(rng)
            chosen = space.decode(a)["data.feature_columns"]
            seen.add(chosen)
            assert lo <= len(chosen) <= hi and len(set(chosen)) == len(chosen)
            m = mutate_value(spec, a["data.feature_columns"], rng, 0.2)
            assert lo <= len(spec.real(m)) <= hi
            if spec.count() > 1:  # a mutation moves, by one column in or out (or one swap)
                before, after = set(chosen), set(spec.real(m))
                assert before != after and len(before ^ after) in (1, 2)
            b = space.sample_vals(rng)
            child = _crossover(space.root, a, b, rng)
            got = set(spec.real(child["data.feature_columns"]))
            assert lo <= len(got) <= hi
            assert got <= set(chosen) | set(space.decode(b)["data.feature_columns"]) or lo > 1
        assert len(seen) == spec.count() or len(seen) > 40  # every subset is reachable


def test_every_hyperopt_algorithm_searches_a_subset():
    """tpe, random and anneal (hyperopt's own) on the same space; the point they hand the
    objective decodes to column names."""
    from hyperopt import Trials, anneal, fmin, rand, tpe

    from sparkdl_tune.search.engines.hyperopt import space_expression

    space = SearchSpace({"data.feature_columns": {"subset": COLS, "min": 1}})
    for algo in (tpe, rand, anneal):
        got = []

        def objective(point):
            cols = space.decode(point)["data.feature_columns"]
            got.append(cols)
            return len(set(cols) ^ {"x1", "x2"})

        trials = Trials()
        fmin(objective, space_expression(space), algo=algo.suggest, max_evals=15, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(1))
        assert all(isinstance(c, tuple) and 1 <= len(c) <= 6 for c in got)
        best = space.decode(trials.best_trial["misc"]["vals"])["data.feature_columns"]
        assert best == got[int(np.argmin(trials.losses()))]


def test_training_data_selects_columns_of_the_one_copy():
    from sparkdl_tune.spec.data import TrainingData

    data = TrainingData({}, 6, None, "regression", feature_names=tuple(COLS))
    sub = data.select(("d1", "x2"))
    assert sub.columns == (1, 2) and sub.input_dim == 2  # dataset order
    assert sub.select(COLS).columns is None and sub.select(None) is sub
    with pytest.raises(ConfigError, match="'zz'.*not among the dataset's features"):
        data.select(["x1", "zz"])


# -- a real tune on local[2] -------------------------------------------------------------------
def _tune_and_compare(spark, tmp_path, space, algorithm, trials, epochs=12, engine="hyperopt"):
    from sparkdl_tune.config.loader import load_config
    from sparkdl_tune.driver.datasets import SyntheticRegressionSource
    from sparkdl_tune.driver.preparation import prepare
    from sparkdl_tune.driver.train import train
    from sparkdl_tune.search.tuner import tune

    data = tmp_path / "reg"
    prepare(SyntheticRegressionSource(rows=3000, distractors=4, seed=5), data, spark)
    common = dict(training__epochs=epochs, model__units="[32, 16]", training__batch_size=64,
                  training__learning_rate=0.01, model__task="regression")
    cfg = load_config(None, overrides=tune_overrides(
        data, tmp_path, {"data.feature_columns": space}, search__name="subsets",
        search__algorithm=algorithm, search__max_trials=trials, search__final_epochs=epochs,
        search__engine=engine, **common))
    summary = tune(cfg, spark)
    best = tuple(summary["best_params"]["data.feature_columns"])
    tuned_mse = summary["final"]["test_metrics"]["test_mse"]
    # the same network and epochs on every column, and on the best subset, with `train`
    runs = {}
    for name, cols in (("all", None), ("best", best)):
        extra = {} if cols is None else {"data.feature_columns": list(cols)}
        over = tune_overrides(data, tmp_path, {"model.dropout": 0.0}, **common)
        over += [f"{k}={v}" for k, v in extra.items()]
        runs[name] = train(load_config(None, overrides=over), spark)["test_metrics"]["test_mse"]
    copies = sorted(n for n in os.listdir(tmp_path / "cache") if n.startswith("train-"))
    print(f"subset search ({algorithm}, {trials} trials): best {best}, final test MSE "
          f"{tuned_mse:.5f}; train on {best}: {runs['best']:.5f}, on all columns: "
          f"{runs['all']:.5f}; train copies {copies}")
    return best, tuned_mse, runs, copies


def _check(best, tuned_mse, runs, copies):
    assert {"x1", "x2"} <= set(best) and not any(c.startswith("d") for c in best)
    assert len(copies) == 1  # every trial, the final model and both trainings read one copy
    assert runs["best"] < runs["all"] and tuned_mse < runs["all"]


@pytest.mark.slow  # ~45 s; the default suite keeps the unit tests of subsets and their reads
def test_grid_over_pairs_finds_x1_x2_and_beats_all_columns(spark, tmp_path):
    """The default variant: every pair of the six columns (15 trials, 8 epochs)."""
    _check(*_tune_and_compare(spark, tmp_path, {"subset": COLS, "min": 2, "max": 2},
                              "grid", 15, epochs=8))


@pytest.mark.slow
def test_grid_over_one_or_two_columns_finds_x1_x2_and_beats_all_columns(spark, tmp_path):
    """Every subset of one or two of the six columns (21 trials)."""
    _check(*_tune_and_compare(spark, tmp_path, {"subset": COLS, "min": 1, "max": 2},
                              "grid", 21))


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["hyperopt", "optuna"])
def test_tpe_over_all_subsets_finds_x1_x2_and_beats_all_columns(spark, tmp_path, engine):
    """The acceptance run: all 63 subsets of the six columns, tpe (optuna's: one include /
    exclude choice per column)."""
    _check(*_tune_and_compare(spark, tmp_path, {"subset": COLS, "min": 1}, "tpe", 40,
                              engine=engine))


def test_a_subset_column_the_dataset_lacks_is_one_line_before_any_trial():
    from sparkdl_tune.search.dimensions import check_subsets

    space = SearchSpace({"data.feature_columns": {"subset": ["x1", "x9"]}})
    check_subsets(space.dimensions, ["x1", "x9", "d1"])
    with pytest.raises(ConfigError, match="subset column 'x9' is not among the dataset's") as e:
        check_subsets(space.dimensions, COLS)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="named features"):  # an array-column dataset
        check_subsets(space.dimensions, ())
