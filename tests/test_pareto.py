"""Accuracy and complexity together (search.objectives): the Pareto front, the retrain rule,
the scalarised loss, genetic's NSGA-II ranking, and one real local[2] search."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from hyperopt import STATUS_OK, Trials, fmin

from sparkdl_tune.errors import ConfigError
from sparkdl_tune.search import pareto
from sparkdl_tune.search.algorithms import genetic
from sparkdl_tune.search.engines.hyperopt import space_expression, suggest_of
from sparkdl_tune.search.engines.protocol import OK, Attempt
from sparkdl_tune.search.space import SearchSpace
from sparkdl_tune.spec.trial import TrialRecord


def record(number, score, params, ok=True, pruned=None):
    return TrialRecord(number=number, ok=ok, vals={}, params={}, score=score if ok else None,
                       loss=-score if ok else None, pruned_epoch=pruned,
                       extra={"params": params} if params is not None else {})


def settings(**kw):
    base = dict(objectives=("val_accuracy", "params"), tolerance=0.005, complexity_weight=0.01,
                algorithm="tpe")
    return SimpleNamespace(**{**base, **kw})


# -- non-dominated sorting and crowding ---------------------------------------------------------
def test_nondominated_sort_finds_fronts_in_order():
    pts = [(1, 5), (2, 3), (3, 1), (2, 5), (3, 3), (4, 4), (1, 5)]
    assert pareto.nondominated_sort(pts) == [[0, 1, 2, 6], [3, 4], [5]]
    assert pareto.nondominated_sort([]) == []
    assert pareto.dominates((1, 1), (1, 2)) and not pareto.dominates((1, 2), (1, 2))


def test_crowding_distance_gives_extremes_infinity_and_inner_points_their_gaps():
    pts = [(0.0, 4.0), (1.0, 3.0), (3.0, 1.0), (4.0, 0.0)]
    d = pareto.crowding(pts, [0, 1, 2, 3])
    assert math.isinf(d[0]) and math.isinf(d[3])
    # point 1: neighbours (0,4) and (3,1): 3/4 + 3/4; point 2: (1,3) and (4,0): 3/4 + 3/4
    assert d[1] == pytest.approx(1.5) and d[2] == pytest.approx(1.5)
    assert all(math.isinf(v) for v in pareto.crowding(pts, [1, 2]).values())
    ranks = pareto.ranks([(0, 4), (1, 3), (3, 1), (4, 0), (2, 4)])
    assert [r for r, _ in ranks] == [0, 0, 0, 0, 1]


# -- the retrain rule ----------------------------------------------------------------------------
def test_choose_takes_the_fewest_params_within_tolerance_of_the_best():
    records = [record(0, 0.900, 50_000), record(1, 0.897, 8_000), record(2, 0.896, 8_000),
               record(3, 0.880, 1_000), record(4, 0.950, 10, pruned=2),
               record(5, 0.0, None, ok=False)]
    choice = pareto.choose(records, "params", "max", 0.005, "val_accuracy")
    assert choice.most_accurate.number == 0
    assert [p.number for p in choice.within] == [0, 1, 2]  # 3: 2 points off; 4: pruned
    assert choice.chosen.number == 1  # 8,000 params; the tie with trial 2 goes to the better
    assert choice.reason is None
    assert "within 0.005 of the best" in choice.why and "fewest parameters" in choice.why
    front = pareto.front(records, "params", "max")
    assert [p.number for p in front] == [3, 1, 0]  # by params; 2 is dominated by 1


def test_choose_says_why_when_no_trial_within_tolerance_is_smaller():
    records = [record(0, 0.90, 5_000), record(1, 0.85, 1_000)]
    choice = pareto.choose(records, "params", "max", 0.005, "val_accuracy")
    assert choice.chosen.number == choice.most_accurate.number == 0
    assert "no other trial is within 0.005" in choice.reason
    records.append(record(2, 0.899, 9_000))
    choice = pareto.choose(records, "params", "max", 0.005, "val_accuracy")
    assert choice.chosen.number == 0 and "has fewer parameters than trial 1" in choice.reason
    assert pareto.choose([record(0, 0.9, None)], "params", "max", 0.005) is None


def test_choose_on_a_loss_minimises_it():
    records = [record(0, 0.30, 9_000), record(1, 0.304, 2_000), record(2, 0.20, 90_000)]
    for r in records:
        r.loss = r.score
    assert pareto.choose(records, "params", "min", 0.005).chosen.number == 2
    assert pareto.choose(records, "params", "min", 0.2).chosen.number == 1


def test_scalarised_loss_and_which_algorithms_learn_from_it():
    assert pareto.scalarised(-0.9, 1000, 0.01) == pytest.approx(-0.9 + 0.03)
    assert pareto.scalarised(0.5, 0, 0.01) == pytest.approx(0.5 - 0.12)  # floored at 1e-12
    loss, pair = pareto.trial_loss(settings(), 0.9, "max", {"params": 100.0})
    assert loss == pytest.approx(-0.9 + 0.02) and pair == [-0.9, 100.0]
    loss, pair = pareto.trial_loss(settings(algorithm="genetic"), 0.9, "max", {"params": 100.0})
    assert loss == -0.9 and pair == [-0.9, 100.0]  # genetic ranks the pair itself
    assert pareto.trial_loss(settings(objectives=()), 0.9, "max", {"params": 1}) == (-0.9, None)
    study = pareto.study([record(0, 0.9, 100), record(1, 0.8, 10)], "params", "max", 0.005,
                         "val_accuracy", 0.01, "tpe")
    assert study["chosen_trial"] == 1 and study["most_accurate_trial"] == 1
    assert [p["trial"] for p in study["front"]] == [2, 1]
    assert "0.01 x log10(params)" in study["learned_from"]
    json.dumps(study)


@pytest.mark.parametrize("objectives,message", [
    (("val_accuracy",), "has 1 entries"),
    (("val_accuracy", "params", "latency_ms"), "has 3 entries"),
    (("val_loss", "params"), "starts with 'val_loss' but the search metric is 'val_accuracy'"),
    (("val_accuracy", "flops"), "unknown second objective 'flops'; use one of params"),
])
def test_bad_objectives_are_one_clear_line(objectives, message):
    with pytest.raises(ConfigError, match=message) as err:
        pareto.second_objective(settings(objectives=objectives), "val_accuracy")
    assert "\n" not in str(err.value)
    assert pareto.second_objective(settings(objectives=()), "val_accuracy") is None
    assert pareto.second_objective(settings(), "val_accuracy") == "params"
    with pytest.raises(ConfigError, match="does not combine with algorithm 'sweep'"):
        pareto.second_objective(settings(algorithm="sweep"), "val_accuracy")


# -- genetic: NSGA-II ranking -------------------------------------------------------------------
SPACE = {"model.x": {"uniform": [0.0, 1.0]}}


def doc(number, loss, objectives=None):
    result = {"status": STATUS_OK, "loss": loss}
    if objectives is not None:
        result["objectives"] = objectives
    return Attempt(number=number, state=OK, vals={"model.x": [number / 10]}, result=result)


def test_genetic_pool_ranks_by_front_then_crowding_when_results_carry_two_objectives():
    space = SearchSpace.from_dict(SPACE)
    # (metric loss, params): 0, 1, 2 and 3 on the first front; 4 behind 1; 5 behind everything
    pairs = [(-0.90, 9000), (-0.88, 3000), (-0.87, 2900), (-0.80, 100), (-0.85, 5000),
             (-0.70, 9999)]
    docs = [doc(i, -5.0 if i == 5 else p[0], list(p)) for i, p in enumerate(pairs)]
    pool = genetic.breeding_pool(space, docs, population=6, elitism=2)
    fitness = {tid: f for f, tid, _ in pool}
    assert [fitness[i][0] for i in range(6)] == [0, 0, 0, 0, 1, 2]  # the loss -5.0 is ignored
    assert math.isinf(-fitness[0][1]) and math.isinf(-fitness[3][1])  # extremes: most spread
    assert fitness[1][1] < 0 and fitness[2][1] < 0
    # the elites come from the first front, the most spread first: trials 0 and 3
    pool = genetic.breeding_pool(space, docs, population=1, elitism=2)
    assert sorted(tid for _, tid, _ in pool) == [0, 3, 5]
    # a tournament between a front-0 and a front-1 member always takes the front-0 one
    rng = np.random.default_rng(0)
    two = [p for p in genetic.breeding_pool(space, docs, 6, 0) if p[1] in (1, 4)]
    assert all(genetic._tournament(two, 2, rng) == {"model.x": 0.1} for _ in range(5))
    # without objectives on every result, the loss decides as before
    docs[2].result.pop("objectives")
    pool = genetic.breeding_pool(space, docs, population=6, elitism=0)
    assert [f for f, _, _ in pool] == [-0.90, -0.88, -0.87, -0.80, -0.85, -5.0]


def test_genetic_with_two_objectives_spreads_along_the_front():
    """A trade-off (accuracy grows with size): the bred children keep the whole range of sizes
    instead of collapsing on the most accurate corner."""
    space = SearchSpace.from_dict({"model.x": {"uniform": [0.0, 1.0]},
                                   "model.y": {"uniform": [0.0, 1.0]}})

    def objective(point):
        p = space.decode(point)
        accuracy = 0.6 + 0.3 * p["model.x"] ** 0.5 - 0.2 * p["model.y"]
        size = 10 ** (2 + 4 * p["model.x"])
        return {"status": STATUS_OK, "loss": -accuracy, "objectives": [-accuracy, size]}

    trials = Trials()
    fmin(objective, space_expression(space),
         algo=suggest_of(genetic.Genetic(space, population=8, seed=0)),
         max_evals=48, trials=trials, rstate=np.random.default_rng(0), show_progressbar=False)
    children = [t["result"]["objectives"] for t in trials.trials[8:]]
    front = pareto.nondominated_sort(children)[0]
    assert len(front) >= 5
    sizes = sorted(children[i][1] for i in front)
    assert sizes[-1] / sizes[0] > 100  # spread over at least two decades
    ys = [t["misc"]["vals"]["model.y"][0] for t in trials.trials]
    assert np.mean(ys[8:]) < np.mean(ys[:8])  # y only costs accuracy: selection pushes it down


# -- a real search on local[2] -------------------------------------------------------------------
SIZES_SPACE = {"model.units": {"choice": [[4], [8], [32], [64, 32]]},
               "training.learning_rate": {"loguniform": [3e-3, 3e-2]}}


def test_tune_keeps_the_front_and_retrains_the_smallest_model_within_tolerance(
        spark, tiny_tabular, tmp_path):
    from conftest import tune_overrides
    from mlflow.tracking import MlflowClient

    from sparkdl_tune.config.loader import load_config
    from sparkdl_tune.search.tuner import tune
    from sparkdl_tune.tracking.resume import finished_trials

    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, SIZES_SPACE, search__name="pareto", search__algorithm="tpe",
        search__objectives="[val_accuracy, params]", search__tolerance=0.02,
        search__max_trials=4, search__execution_mode="parallel"))
    summary = tune(cfg, spark)
    assert summary["trials"] == 4 and summary["failed"] == 0

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("tests")
    runs = client.search_runs([exp.experiment_id],
                              f"tags.`mlflow.parentRunId` = '{summary['parent_run_id']}' and "
                              "tags.`sparkdl_tune.kind` = 'trial'")
    assert len(runs) == 4
    for run in runs:  # every trial measured all three second objectives
        m = run.data.metrics
        assert m["params"] >= 8 * 4 + 4 + 4 * 3 + 3 and m["params"] == int(m["params"])
        # figures a clock measured: positive and finite, never a size (a loaded machine is slow)
        assert m["epoch_seconds"] > 0 and math.isfinite(m["epoch_seconds"])
        assert m["latency_ms"] > 0 and math.isfinite(m["latency_ms"])

    pareto_out = summary["pareto"]
    pts = {p["trial"]: p for p in pareto_out["points"]}
    assert len(pts) == 4 and pareto_out["objectives"] == ["val_accuracy", "params"]
    best = max(p["metric"] for p in pts.values())
    within = [p for p in pts.values() if p["metric"] >= best - 0.02 - 1e-12]
    chosen = pareto_out["chosen"]
    assert chosen["second"] == min(p["second"] for p in within)
    assert pareto_out["chosen_trial"] == summary["best_trial"] == chosen["trial"]
    assert pareto_out["most_accurate"]["metric"] == best
    assert "within 0.02 of the best" in pareto_out["rule"]
    assert chosen["trial"] in [p["trial"] for p in pareto_out["front"]]
    assert "log10(params)" in pareto_out["learned_from"]
    on_disk = json.loads((tmp_path / "out" / "pareto" / "summary.json").read_text())
    assert on_disk["pareto"]["chosen_trial"] == chosen["trial"]

    html = (tmp_path / "out" / "pareto" / "report" / "report.html").read_text()
    assert "pareto.png" in html and "Accuracy and complexity" in html
    assert (tmp_path / "out" / "pareto" / "report" / "pareto.png").stat().st_size > 10_000

    # a resumed search reads the measures back, and the pair genetic ranks by
    from sparkdl_tune.search.monitor import Monitor

    restored = finished_trials(cfg.mlflow, summary["parent_run_id"], _space())
    assert all(r.extra["params"] == pts[r.number + 1]["second"] for r in restored)
    Monitor(cfg.mlflow, summary["parent_run_id"], cfg.search, None, "val_accuracy", "max",
            restored)
    assert all(r.objectives == [-pts[r.number + 1]["metric"], pts[r.number + 1]["second"]]
               for r in restored)


def _space():
    return SearchSpace.from_dict(SIZES_SPACE)


def test_bad_objectives_exit_2_before_training(spark, tiny_tabular, tmp_path, capsys):
    from conftest import tune_overrides

    from sparkdl_tune.cli import main

    args = ["tune", "conf/jobs/fashion_tune.yaml",
            *tune_overrides(tiny_tabular, tmp_path, SIZES_SPACE, search__name="bad",
                            search__objectives="[val_accuracy, flops]")]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sparkdl-tune")]
    assert len(err) == 1 and "unknown second objective 'flops'" in err[0], err
    assert not (tmp_path / "out").exists()
