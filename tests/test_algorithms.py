"""Grid and genetic search: package proposers on hyperopt's suggest protocol (the engine's
wrapper), driven by a real fmin."""

import pickle

import numpy as np
import pytest
from hyperopt import STATUS_FAIL, STATUS_OK, Trials, fmin, rand, space_eval

from sparkdl_tune.errors import ConfigError
from sparkdl_tune.search.algorithms import ALGORITHMS, DESIGNS, make_algo
from sparkdl_tune.search.algorithms.genetic import Genetic
from sparkdl_tune.search.algorithms.grid import Grid
from sparkdl_tune.search.engines.hyperopt import space_expression, suggest_of
from sparkdl_tune.search.space import SearchSpace

DISCRETE = {
    "training.batch_size": {"choice": [64, 128]},
    "model.n_layers": {"int": [1, 3]},
    "model.task": "classification",
    "model.architecture": {"choice": [
        {"value": "mlp", "model.layer_units": {"quniform": [64, 128, 64]}}, "linear"]},
}

MIXED = {
    "model.a": {"uniform": [-5.0, 5.0]},
    "model.b": {"uniform": [-5.0, 5.0]},
    "training.learning_rate": {"loguniform": [1.0e-5, 1.0e-1]},
    "model.n_layers": {"int": [1, 20]},
    "training.optimizer": {"choice": ["sgd", "adam", "rmsprop", "nadam"]},
    "model.activation": {"choice": ["relu", "elu", "tanh"]},
}


def mixed_loss(p):
    """Sum of squared, scaled distances to a known optimum; 0 at the optimum."""
    return (((p["model.a"] - 1.3) ** 2 + (p["model.b"] + 2.1) ** 2) / 25
            + (np.log10(p["training.learning_rate"]) + 3) ** 2 / 4
            + ((p["model.n_layers"] - 7) / 19) ** 2
            + (p["training.optimizer"] != "adam") + 0.5 * (p["model.activation"] != "elu"))


def run(space, algo, objective, max_evals, trials=None, seed=0):
    trials = Trials() if trials is None else trials
    fmin(lambda point: objective(space.decode(point)), space_expression(space),
         algo=suggest_of(algo), max_evals=max_evals, trials=trials,
         rstate=np.random.default_rng(seed), show_progressbar=False)
    return trials


def decoded(space, trials):
    return [space.decode(t["misc"]["vals"]) for t in trials.trials]


def test_grid_visits_every_point_once_in_order_and_stops_by_itself():
    space = SearchSpace.from_dict(DISCRETE)
    seen = []
    trials = run(space, Grid(space), lambda p: seen.append(p) or 1.0, 100)
    assert len(trials.trials) == len(space.grid_points()) == 18
    assert seen == space.grid_points() == decoded(space, trials)


def test_grid_resumes_from_trials_after_pickling():
    space = SearchSpace.from_dict(DISCRETE)
    trials = run(space, Grid(space), lambda p: 1.0, 5)
    assert len(trials.trials) == 5
    again = pickle.loads(pickle.dumps(Grid(space)))
    run(space, again, lambda p: 1.0, 100, trials=trials, seed=1)
    assert decoded(space, trials) == space.grid_points()
    run(space, again, lambda p: 1.0, 100, trials=trials, seed=2)  # exhausted: adds nothing
    assert len(trials.trials) == 18


def test_grid_fills_a_batch_of_ids_with_distinct_points():
    space = SearchSpace.from_dict(DISCRETE)
    trials = Trials()
    fmin(lambda p: 1.0, space_expression(space), algo=suggest_of(Grid(space)), max_evals=50,
         trials=trials, max_queue_len=4, show_progressbar=False,
         rstate=np.random.default_rng(0))
    points = decoded(space, trials)
    assert len(points) == 18 and sorted(map(repr, points)) == sorted(
        map(repr, space.grid_points()))


def test_grid_refuses_a_continuous_dimension():
    space = SearchSpace.from_dict(MIXED, source="conf/spaces/mixed.yaml")
    with pytest.raises(ConfigError, match="grid search needs a discrete space, but 'model.a' is "
                                          "uniform"):
        Grid(space)


def test_algorithm_refuses_a_different_space():
    space = SearchSpace.from_dict(DISCRETE)
    other = SearchSpace.from_dict({"model.units": {"choice": [[1], [2]]}})
    with pytest.raises(ConfigError, match=r"pass space_expression\(space\) of the same Search"):
        fmin(lambda p: 1.0, space_expression(other), algo=suggest_of(Grid(space)), max_evals=3,
             trials=Trials(), show_progressbar=False)


def test_genetic_beats_random_search_at_equal_budget():
    space = SearchSpace.from_dict(MIXED)
    best = {"genetic": [], "random": []}
    for seed in range(10):
        for name, algo in (("genetic", Genetic(space)), ("random", rand.suggest)):
            trials = run(space, algo, mixed_loss, 60, seed=seed)
            assert len(trials.trials) == 60
            best[name].append(min(trials.losses()))
    assert np.mean(best["genetic"]) < np.mean(best["random"])
    assert np.mean(best["genetic"]) < 0.75 * np.mean(best["random"])


def test_genetic_best_decodes_to_real_values():
    space = SearchSpace.from_dict(MIXED)
    trials = run(space, Genetic(space, population=8), mixed_loss, 30)
    best = trials.argmin
    assert isinstance(best["training.optimizer"], int)
    values = space.decode(best)
    assert values["training.optimizer"] in ("sgd", "adam", "rmsprop", "nadam")
    assert values == space.decode(space_eval(space_expression(space), best))
    assert mixed_loss(values) == pytest.approx(min(trials.losses()))


def test_genetic_survives_pickling_and_resumes_exactly():
    space = SearchSpace.from_dict(MIXED)
    algo = Genetic(space, population=8, seed=7)
    whole = run(space, algo, mixed_loss, 30)
    first = run(space, algo, mixed_loss, 12, seed=3)
    again = pickle.loads(pickle.dumps(algo))
    resumed = run(space, again, mixed_loss, 30, trials=first, seed=4)
    assert len(resumed.trials) == 30
    assert decoded(space, resumed) == decoded(space, whole)
    keys = {space.vals_key(t["misc"]["vals"]) for t in resumed.trials}
    assert len(keys) == 30  # no point evaluated twice


def test_genetic_never_breeds_from_failed_trials():
    space = SearchSpace.from_dict(MIXED)

    def objective(p):
        # Failed trials report a tempting loss: a parent picked by loss alone would be one.
        if p["training.optimizer"] == "sgd":
            return {"status": STATUS_FAIL, "loss": -1e9}
        return {"status": STATUS_OK, "loss": mixed_loss(p)}

    algo = Genetic(space, population=10, mutation_rate=0.05, seed=0)
    trials = Trials()
    fmin(lambda point: objective(space.decode(point)), space_expression(space),
         algo=suggest_of(algo), max_evals=60, trials=trials, rstate=np.random.default_rng(0),
         show_progressbar=False)
    children = decoded(space, trials)[10:]
    n_sgd = sum(p["training.optimizer"] == "sgd" for p in children)
    # ~50 if failed trials were parents; a few come from mutation when breeding hits duplicates
    assert len(children) == 50 and n_sgd <= 10
    assert trials.best_trial["result"]["status"] == STATUS_OK


def test_genetic_stops_after_its_generations():
    space = SearchSpace.from_dict(MIXED)
    trials = run(space, Genetic(space, population=5, generations=3), mixed_loss, 100)
    assert len(trials.trials) == 15


def test_genetic_on_nested_choices_keeps_branches_consistent():
    space = SearchSpace.from_dict({
        "training.learning_rate": {"loguniform": [1e-4, 1e-2]},
        "model.architecture": {"choice": [
            {"value": "mlp", "model.units": {"choice": [[256], [512]]},
             "model.dropout": {"uniform": [0.0, 0.5]}},
            {"value": "cnn2d", "model.conv_blocks": {"choice": [[{"filters": 32}],
                                                                [{"filters": 64}]]},
             "model.kernel_size": {"int": [3, 7, 2]}},
        ]},
    })

    def objective(p):
        penalty = 0.0 if p["model.architecture"] == "cnn2d" else 1.0
        return penalty + abs(p.get("model.kernel_size", 3) - 5) + \
            abs(np.log10(p["training.learning_rate"]) + 3)

    trials = run(space, Genetic(space, population=6), objective, 40)
    for p in decoded(space, trials):
        extra = {"mlp": {"model.units", "model.dropout"},
                 "cnn2d": {"model.conv_blocks", "model.kernel_size"}}[p["model.architecture"]]
        assert set(p) == {"training.learning_rate", "model.architecture"} | extra
    best = space.decode(trials.argmin)
    assert best["model.architecture"] == "cnn2d" and best["model.kernel_size"] == 5


@pytest.mark.parametrize("options, message", [
    ({"population": 1}, "genetic population is 1; use 2 or more"),
    ({"mutation_rate": 1.5}, "genetic mutation_rate is 1.5"),
    ({"elitism": 20}, "genetic elitism is 20; use 0 to population (10)"),
    ({"tournament_size": 0}, "genetic tournament_size is 0"),
    ({"generations": 0}, "genetic generations is 0"),
])
def test_genetic_options_are_checked(options, message):
    with pytest.raises(ConfigError) as err:
        Genetic(SearchSpace.from_dict(MIXED), **options)
    assert message in str(err.value)


def test_make_algo_gives_every_algorithm_by_name():
    discrete = SearchSpace.from_dict(DISCRETE)
    for name in ALGORITHMS:
        if name in DESIGNS:  # staged designs: tests/test_designs.py
            continue
        algo = make_algo(name, discrete)
        trials = run(discrete, pickle.loads(pickle.dumps(algo)), lambda p: 1.0, 6)
        assert len(trials.trials) == 6, name
    with pytest.raises(ConfigError, match="unknown search algorithm 'tpee'; did you mean 'tpe'"):
        make_algo("tpee")
    with pytest.raises(ConfigError, match="algorithm 'genetic' needs the search space"):
        make_algo("genetic")
    assert make_algo("tpe", n_startup_jobs=3).keywords == {"n_startup_jobs": 3}


def test_genetic_fills_batches_while_trials_are_still_running():
    from hyperopt.base import Domain

    space = SearchSpace.from_dict(MIXED)
    domain = Domain(lambda p: 0.0, space_expression(space))
    algo = Genetic(space, population=4)
    trials = Trials()
    for seed in range(3):  # as under SparkTrials: nothing has finished yet
        docs = suggest_of(algo)(trials.new_trial_ids(3), domain, trials, seed)
        trials.insert_trial_docs(docs)
        trials.refresh()
    keys = {space.vals_key(t["misc"]["vals"]) for t in trials.trials}
    assert len(trials.trials) == 9 and len(keys) == 9
    assert all(t["state"] == 0 for t in trials.trials)  # JOB_STATE_NEW: suggested, not run
