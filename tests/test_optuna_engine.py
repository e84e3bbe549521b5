"""The Optuna engine (``search.engine: optuna``) against the engine API, with real Optuna and,
for parallel trials, real local[2] Spark and a real report server. The objectives are tiny
pure-Python functions of the point: the engine is what is under test."""

from __future__ import annotations

import time

import numpy as np
import optuna
import pytest

from sparkdl_tune.errors import ConfigError
from sparkdl_tune.search.engines import load, optuna_space
from sparkdl_tune.search.engines.protocol import CANCELLED, FAILED, OK
from sparkdl_tune.search.space import SearchSpace
from sparkdl_tune.spec.trial import TrialRecord

engine = load("optuna")

SPACE = SearchSpace({
    "training.learning_rate": {"loguniform": [1e-4, 1e-1]},
    "model.dropout": {"uniform": [0.0, 0.5]},
    "model.units": {"quniform": [8, 64, 8]},
    "model.scale": {"quniform": [0.0, 0.5, 0.1]},
    "model.kernel": {"int": [3, 9, 2]},
    "data.feature_columns": {"subset": ["a", "b", "c", "d"], "min": 2, "max": 3},
    "model.architecture": {"choice": [
        {"value": "mlp", "model.layers": {"int": [1, 3]},
         "model.head": {"choice": [{"value": "wide", "model.width": {"choice": [32, 64]}},
                                   "narrow"]}},
        "linear"]},
    "model.task": "classification",
})
DISCRETE = SearchSpace({"model.units": {"choice": [8, 16, 32]}, "model.layers": {"int": [1, 2]}})


def lr_loss(vals, key=None):
    p = SPACE.decode(vals)
    return {"status": "ok", "loss": abs(np.log10(p["training.learning_rate"]) + 2),
            "params": p}


def run(objective=lr_loss, algo="tpe", space=SPACE, seed=0, **kw):
    stores = []
    kw.setdefault("max_trials", 8)
    kw.setdefault("parallel", False)
    algo = engine.algorithm(algo, space, seed) if isinstance(algo, str) else algo
    engine.run(objective, space, algo, seed=seed, watch=stores.append, **kw)
    return stores[0]


def record(number, vals, loss, ok=True):
    return TrialRecord(number=number, ok=ok, vals={k: [v] for k, v in vals.items()},
                       params=SPACE.decode(vals), loss=loss if ok else None,
                       failure=None if ok else "boom")


def test_every_dimension_kind_round_trips_both_ways():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    rng, kinds = np.random.default_rng(3), set()
    for i in range(60):
        vals = optuna_space.suggest(study.ask(), SPACE)  # optuna -> vals
        point = SPACE.decode(vals)
        assert SPACE.vals_key(vals) and point["model.task"] == "classification"
        assert 2 <= len(point["data.feature_columns"]) <= 3
        assert point["model.kernel"] in (3, 5, 7, 9) and point["model.units"] % 8 == 0
        assert point["model.scale"] in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
        kinds |= {d.kind for d in SPACE.dimensions if d.label in vals}
        sampled = SPACE.sample_vals(rng)  # vals -> optuna params -> the same vals
        params, dists = optuna_space.params(SPACE, sampled)
        assert set(params) == set(dists)
        study.enqueue_trial(params)
        again = optuna_space.suggest(study.ask(), SPACE)
        assert SPACE.vals_key(again) == SPACE.vals_key(sampled), (sampled, again)
        assert SPACE.decode(again) == SPACE.decode(sampled)
    assert kinds == {"loguniform", "uniform", "quniform", "int", "subset", "choice"}


def test_nested_choices_suggest_only_the_chosen_branch_and_subsets_one_param_per_column():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    branches = set()
    for _ in range(40):
        trial = study.ask()
        vals = optuna_space.suggest(trial, SPACE)
        arch = SPACE.decode(vals)["model.architecture"]
        branches.add(arch)
        inside = {k for k in trial.params if k.startswith("model.architecture=")}
        if arch == "linear":
            assert not inside
        else:
            head = "model.architecture=mlp/model.head"
            wide = trial.params[head] == 0
            assert inside == {"model.architecture=mlp/model.layers", head,
                              *([f"{head}=wide/model.width"] if wide else [])}
        assert {k for k in trial.params if k.startswith("data.feature_columns")} == \
            {f"data.feature_columns[{c}]" for c in "abcd"}
        assert set(vals) == {k for k in trial.params if "[" not in k} | \
            {"data.feature_columns"}
    assert branches == {"mlp", "linear"}


def test_a_subset_draw_outside_its_size_limits_is_repaired_to_an_allowed_subset():
    subset = SPACE.dimensions[5].spec
    assert subset.kind == "subset"
    assert subset.real(optuna_space.subset_val(subset, [])) == ("a", "b")
    assert subset.real(optuna_space.subset_val(subset, [0, 1, 2, 3])) == ("a", "b", "c")
    assert subset.real(optuna_space.subset_val(subset, [1, 3])) == ("b", "d")


def test_a_seed_makes_the_search_repeatable():
    points = [[a.vals for a in run(seed=s, max_trials=12).attempts()] for s in (7, 7, 8)]
    assert points[0] == points[1] and points[0] != points[2]


def test_tpe_learns_the_loss_better_than_random():
    best = {algo: min(a.loss for a in run(algo=algo, seed=1, max_trials=40).attempts())
            for algo in ("tpe", "random")}
    assert best["tpe"] <= best["random"] and best["tpe"] < 0.1, best


def test_restored_trials_count_toward_max_trials_and_teach_the_sampler():
    rng = np.random.default_rng(0)
    records = [record(i, SPACE.sample_vals(rng), 1.0 + i) for i in range(3)]
    records.append(record(3, SPACE.sample_vals(rng), None, ok=False))
    calls = []
    store = run(lambda vals, key=None: calls.append(vals) or lr_loss(vals), max_trials=6,
                restored=records)
    attempts = store.attempts()
    assert len(calls) == 2 and len(attempts) == 6
    assert [a.result.get("restored") for a in attempts[:4]] == [True] * 4
    assert [a.loss for a in attempts[:4]] == [1.0, 2.0, 3.0, None]
    trials = store.study.trials
    assert [t.state.name for t in trials[:4]] == ["COMPLETE"] * 3 + ["FAIL"]
    assert trials[0].value == 1.0 and all(t.state.name == "COMPLETE" for t in trials[4:])
    assert SPACE.vals_key({k: v[0] for k, v in attempts[0].vals.items() if v}) == \
        SPACE.vals_key({k: v[0] for k, v in records[0].vals.items()})


def test_early_stop_ends_the_search_between_trials():
    seen = []

    def enough(store):
        seen.append(len(store.attempts()))
        return sum(a.loss is not None for a in store.attempts()) >= 3

    store = run(max_trials=20, early_stop=enough)
    assert len(store.attempts()) == 3 and store.why == "early stop" and seen[-1] == 3


def test_the_timeout_ends_a_serial_search_between_trials():
    def slow(vals, key=None):
        time.sleep(0.3)
        return lr_loss(vals)

    store = run(slow, max_trials=50, timeout_seconds=0.5)
    assert 1 <= len(store.attempts()) < 50 and store.why == "timeout"
    assert all(a.state == OK for a in store.attempts())


def test_a_failing_objective_fails_its_attempt_and_the_search_goes_on():
    def flaky(vals, key=None):
        n = flaky.calls = getattr(flaky, "calls", 0) + 1
        if n == 2:
            raise RuntimeError("out of memory")
        if n == 3:
            return {"status": "fail", "failure": "diverged"}
        if n == 4:  # stopped early by the scheduler: a finished trial with its loss
            return {**lr_loss(vals), "loss": 0.5, "pruned": True}
        return lr_loss(vals)

    store = run(flaky, max_trials=6)
    attempts = store.attempts()
    assert len(attempts) == 6 and attempts[1].state == FAILED
    assert attempts[1].error == "RuntimeError: out of memory"
    assert attempts[2].state == OK and attempts[2].loss is None
    assert sum(a.loss is not None for a in attempts) == 4
    assert [t.state.name for t in store.study.trials[1:4]] == ["FAIL", "FAIL", "COMPLETE"]
    assert store.study.trials[3].value == 0.5 and attempts[3].loss == 0.5


class Grid:
    """The package's grid as a Proposer: the space's grid points not yet attempted."""

    def __init__(self, space):
        self.space = space

    def propose(self, n, store, seed):
        seen = {self.space.vals_key({k: v[0] for k, v in a.vals.items() if v})
                for a in store.attempts()}
        return [v for k, v in self.space.grid_vals() if k not in seen][:n]


def test_a_proposer_proposes_the_points_and_an_empty_answer_ends_the_search():
    calls = []

    def objective(vals, key=None):
        calls.append(DISCRETE.decode(vals))
        return {"status": "ok", "loss": float(len(calls))}

    store = run(objective, algo=Grid(DISCRETE), space=DISCRETE, max_trials=50)
    assert calls == DISCRETE.grid_points() and len(calls) == 6
    assert len(store.study.trials) == 6 and store.study.best_value == 1.0


def test_a_resumed_proposer_carries_on_where_its_restored_attempts_stop():
    done = DISCRETE.grid_vals()[:4]
    records = [TrialRecord(number=i, ok=True, vals={k: [v] for k, v in vals.items()},
                           params=DISCRETE.decode(vals), loss=1.0)
               for i, (_, vals) in enumerate(done)]
    calls = []

    def objective(vals, key=None):
        calls.append(DISCRETE.decode(vals))
        return {"status": "ok", "loss": 0.0}

    store = run(objective, algo=Grid(DISCRETE), space=DISCRETE, max_trials=50, restored=records)
    assert calls == DISCRETE.grid_points()[4:] and len(store.attempts()) == 6


def test_nsga2_on_two_objectives_returns_a_front():
    def two(vals, key=None):
        x = SPACE.decode(vals)["model.dropout"] * 2  # in [0, 1]
        return {"status": "ok", "loss": x, "objectives": [x, (1 - x) ** 2]}

    store = run(two, algo="nsga2", max_trials=30)
    assert [d.name for d in store.study.directions] == ["MINIMIZE", "MINIMIZE"]
    front = store.study.best_trials
    assert len(front) >= 5
    pairs = [t.values for t in front]
    assert not any(a[0] <= b[0] and a[1] <= b[1] and a != b for a in pairs for b in pairs)


def test_the_algorithms_and_their_bad_names_or_options():
    for name in ("tpe", "random", "cmaes", "nsga2"):
        assert engine.algorithm(name, SPACE, 0).name == name
    assert len(run(algo="cmaes", max_trials=4).attempts()) == 4
    with pytest.raises(ConfigError) as err:
        engine.algorithm("anneal", SPACE, 0)
    assert "\n" not in str(err.value) and "tpe, random, cmaes, gp, nsga2" in str(err.value)
    for name in ("tpe", "cmaes", "random", "nsga2"):  # the tuner's (hyperopt's) option name
        sampler = engine.algorithm(name, SPACE, 0, n_startup_jobs=3).sampler(0)
        assert getattr(sampler, "_n_startup_trials", 3) == 3, name
    with pytest.raises(ConfigError) as err:
        engine.algorithm("tpe", SPACE, 0, n_startup=3)
    assert "n_startup" in str(err.value)
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError) as err:
            engine.algorithm("gp", SPACE, 0)
        assert "PyTorch" in str(err.value) and "\n" not in str(err.value)


@pytest.fixture
def server():
    from sparkdl_tune.search.report_server import ReportServer

    with ReportServer(lambda message: {}, "127.0.0.1") as s:
        yield s


def test_parallel_trials_run_on_warm_executors(spark):
    space = SPACE

    def objective(vals, key=None):  # defined here: cloudpickle ships it by value
        p = space.decode(vals)
        return {"status": "ok", "loss": p["model.dropout"], "key": key}

    store = run(objective, max_trials=6, parallel=True, parallelism=2, spark=spark,
                server=None, runner="executors")  # a report server of its own
    attempts = store.attempts()
    assert len(attempts) == 6 and all(a.state == OK for a in attempts)
    assert all(a.result["key"] for a in attempts) and store.study.best_value >= 0
    assert len(store.study.trials) == 6


def test_a_parallel_proposer_search_stops_early_and_cancels_what_runs(spark, server):
    """The first grid point ends at once, every other one hangs: the two slots' first points
    are asked together, so when the first ends and the stop rule fires, the second is queued
    or running, whichever the machine's speed (the search never waits for it)."""
    def objective(vals, key=None):
        import time

        first = vals["model.units"] == 0 and vals["model.layers"] == 0
        time.sleep(0.5 if first else 60)
        return {"status": "ok", "loss": 1.0}

    store = run(objective, algo=Grid(DISCRETE), space=DISCRETE, max_trials=50, parallel=True,
                parallelism=2, spark=spark, server=server, runner="executors",
                early_stop=lambda store: any(a.loss is not None for a in store.attempts()))
    attempts = store.attempts()
    assert store.why == "early stop" and all(a.ended for a in attempts)
    assert sum(a.state == OK for a in attempts) == 1
    assert sum(a.state == CANCELLED for a in attempts) >= 1
    points = [DISCRETE.decode({k: v[0] for k, v in a.vals.items() if v}) for a in attempts]
    assert points == DISCRETE.grid_points()[:len(points)]


@pytest.mark.slow  # a new Python worker takes the dead one's place: ~20 s on 2 cores
def test_a_lost_trial_task_fails_its_attempt_and_the_search_goes_on(spark, server):
    def objective(vals, key=None):
        import os

        if vals["model.units"] == 0 and vals["model.layers"] == 0:
            os._exit(1)  # the Python worker dies while it holds the first grid point
        return {"status": "ok", "loss": 1.0}

    store = run(objective, algo=Grid(DISCRETE), space=DISCRETE, max_trials=4, parallel=True,
                parallelism=2, spark=spark, server=server, runner="executors")
    attempts = store.attempts()
    assert len(attempts) == 4 and attempts[0].state == FAILED and attempts[0].error
    assert [a.state for a in attempts[1:]] == [OK] * 3
    assert [t.state.name for t in store.study.trials] == ["FAIL"] + ["COMPLETE"] * 3
    print(f"\nthe lost trial's error: {attempts[0].error}")


def test_the_parallel_timeout_cancels_running_trials(spark, server):
    def objective(vals, key=None):
        import time

        time.sleep(60)
        return {"status": "ok", "loss": 1.0}

    store = run(objective, max_trials=6, parallel=True, parallelism=2, spark=spark,
                server=server, runner="sparktrials", timeout_seconds=2)
    attempts = store.attempts()
    assert store.why == "timeout"
    assert attempts and all(a.state == CANCELLED for a in attempts)
    assert all(t.state.name == "FAIL" for t in store.study.trials)
