"""Study designs' decisions (sweep, pyramid), scripted without Spark; then on local[2]."""

from __future__ import annotations

import json
import pickle

import pytest
from conftest import child_runs, tune_overrides

from sparkdl_tune.config.loader import load_config
from sparkdl_tune.config.schema import PyramidSettings
from sparkdl_tune.errors import ConfigError
from sparkdl_tune.search.algorithms import make_algo, make_design
from sparkdl_tune.search.algorithms import pyramid as pyr
from sparkdl_tune.search.algorithms.staged import PENDING, Outcome
from sparkdl_tune.search.space import SearchSpace

SPACE = {"model.kernel_initializer": {"choice": ["glorot_uniform", "he_normal", "zeros"]},
         "model.activation": {"choice": ["relu", "tanh"]},
         "training.optimizer": {"choice": ["adam", "sgd", "adadelta"]}}


FAILED = "failed"


def scripted(space, loss_of, ran=None):
    """result(vals) from a loss function of the decoded point; records what was asked."""
    def result(vals):
        point = space.decode(vals)
        if ran is not None:
            ran.append(point)
        loss = loss_of(point)
        if loss is FAILED:
            return Outcome(None, status="failed")
        return loss if loss is None or loss is PENDING else Outcome(loss, trial=0, score=-loss)
    return result


# -- sweep ---------------------------------------------------------------------------------
def sweep_losses(p):
    return ({"glorot_uniform": 0.3, "he_normal": 0.2, "zeros": 0.9}[p["model.kernel_initializer"]]
            + {"relu": 0.0, "tanh": -0.05}[p["model.activation"]]
            + {"adam": 0.0, "sgd": 0.1, "adadelta": 0.2}[p["training.optimizer"]])


def test_sweep_tries_each_dimension_in_order_with_the_others_at_their_best():
    space = SearchSpace(SPACE)
    sweep = make_design("sweep", space, start={"model.activation": "relu",
                                               "training.optimizer": "sgd"})
    assert sweep.planned() == 3 + 2 + 3 - 2
    # nothing ran: the first step's three candidates, the others at their configured values
    plan = sweep.walk(lambda vals: None)
    assert not plan.done and [space.decode(v) for v in plan.todo] == [
        {"model.kernel_initializer": k, "model.activation": "relu", "training.optimizer": "sgd"}
        for k in ("glorot_uniform", "he_normal", "zeros")]
    # one candidate still running: the next dimension waits for it
    pending = lambda p: PENDING if p["model.kernel_initializer"] == "zeros" else sweep_losses(p)  # noqa: E731
    plan = sweep.walk(scripted(space, pending))
    assert len(plan.steps) == 1 and plan.steps[0].chosen is None
    plan = sweep.walk(scripted(space, sweep_losses))
    assert plan.done
    assert [s.name for s in plan.steps] == list(SPACE)
    assert [s.labels[s.chosen] for s in plan.steps] == ["he_normal", "tanh", "adam"]
    # step 2 holds the kernel initializer at its winner, step 3 both winners
    assert all(space.decode(c)["model.kernel_initializer"] == "he_normal"
               for c in plan.steps[1].candidates)
    assert all(space.decode(c)["model.activation"] == "tanh" for c in plan.steps[2].candidates)
    assert space.decode(plan.result) == {"model.kernel_initializer": "he_normal",
                                         "model.activation": "tanh", "training.optimizer": "adam"}
    # the winner carried into the next step is the same point: 6 distinct trials, not 8
    keys = {space.vals_key(c) for s in plan.steps for c in s.candidates}
    assert len(keys) == sweep.planned() == 6


def test_sweep_keeps_the_current_value_when_every_candidate_fails_and_prefers_full_trials():
    space = SearchSpace(SPACE)
    sweep = make_design("sweep", space)
    # tanh always fails: relu (the configured default) wins the activation step
    plan = sweep.walk(scripted(space, lambda p: FAILED if p["model.activation"] == "tanh"
                               else sweep_losses(p)))
    assert plan.done and plan.steps[1].labels[plan.steps[1].chosen] == "relu"
    # a pruned candidate loses to one that trained its full epochs, whatever its loss
    from sparkdl_tune.search.algorithms.staged import winner
    assert winner([Outcome(0.1, pruned=True), Outcome(0.5), None]) == 1
    assert winner([Outcome(None), Outcome(0.3, pruned=True)]) == 1
    assert winner([Outcome(None), None]) is None
    one = make_design("sweep", SearchSpace({"model.activation": {"choice": ["relu", "tanh"]}}))
    plan = one.walk(lambda vals: Outcome(None))
    assert plan.done and plan.steps[0].chosen is None
    assert "every value failed" in plan.steps[0].note and plan.result == one.start


def test_sweep_values_of_numeric_dimensions_and_its_bad_input():
    space = SearchSpace({"training.learning_rate": {"loguniform": [1e-4, 1e-2]},
                         "model.dropout": {"uniform": [0.0, 0.4]},
                         "training.batch_size": {"int": [16, 64, 16]},
                         "model.l2": {"fixed": 0.0}})
    sweep = make_design("sweep", space, points=3, start={"training.batch_size": 32})
    plan = sweep.walk(lambda vals: None)
    assert [space.decode(c)["training.learning_rate"] for c in plan.todo] == \
        pytest.approx([1e-4, 1e-3, 1e-2])
    steps = sweep.walk(lambda vals: Outcome(1.0)).steps
    assert [s.labels for s in steps] == [pytest.approx([1e-4, 1e-3, 1e-2]), [0.0, 0.2, 0.4],
                                         [16, 32, 48, 64]]
    assert space.decode(sweep.start)["training.batch_size"] == 32  # the configured value
    assert space.decode(sweep.start)["model.dropout"] == 0.2  # none configured: the middle
    with pytest.raises(ConfigError, match="conditional"):
        make_design("sweep", SearchSpace({"model.architecture": {"choice": [
            {"value": "mlp", "model.units": {"choice": [[8], [16]]}}, "cnn1d"]}}))
    with pytest.raises(ConfigError, match="at least one dimension"):
        make_design("sweep", SearchSpace({"model.l2": {"fixed": 0.0}}))


def test_sweep_through_hyperopt_ends_its_search_by_itself():
    """The real engine, driver-side Trials: the trials run in sweep order, then fmin stops
    although the budget is larger."""
    from hyperopt import Trials, fmin

    from sparkdl_tune.search.engines.hyperopt import space_expression, suggest_of

    space = SearchSpace(SPACE)
    seen = []

    def objective(point):
        p = space.decode(point)
        seen.append((p["model.kernel_initializer"], p["model.activation"],
                     p["training.optimizer"]))
        return {"status": "ok", "loss": sweep_losses(p)}

    trials = Trials()
    algo = pickle.loads(pickle.dumps(make_algo("sweep", space)))  # as SparkTrials ships it
    fmin(objective, space_expression(space), algo=suggest_of(algo), max_evals=50,
         trials=trials, show_progressbar=False)
    assert seen == [("glorot_uniform", "relu", "adam"), ("he_normal", "relu", "adam"),
                    ("zeros", "relu", "adam"), ("he_normal", "tanh", "adam"),
                    ("he_normal", "tanh", "sgd"), ("he_normal", "tanh", "adadelta")]
    assert len(trials.trials) == 6


# -- pyramid -------------------------------------------------------------------------------
def pyramid_for(input_dim=64, output_size=4, min_delta=0.01, max_layers=None, start=2):
    settings = PyramidSettings(min_delta=min_delta, start_units=start, max_layers=max_layers)
    space = SearchSpace(pyr.space_entries(None, input_dim, output_size, settings))
    return space, make_design("pyramid", space, input_dim=input_dim, output_size=output_size,
                              min_delta=min_delta, start_units=start, max_layers=max_layers)


def growth_loss(p):
    """Better up to 16 units in the first layer, a second layer helps at 8, a third not."""
    units = p["model.units"]
    first = {2: 0.9, 4: 0.7, 8: 0.5, 16: 0.4, 32: 0.395, 64: 0.39}[units[0]]
    if len(units) >= 2:
        first -= {2: 0.0, 4: 0.05, 8: 0.08, 16: 0.081}.get(units[1], 0.0)
    if len(units) >= 3:
        first -= 0.001
    return first


def test_pyramid_grows_a_layer_while_it_helps_then_adds_narrower_layers():
    space, design = pyramid_for()
    ran = []
    plan = design.walk(scripted(space, growth_loss, ran))
    assert plan.done
    layers = [(s.name, s.labels, s.labels[s.chosen] if s.chosen is not None else None)
              for s in plan.steps]
    # layer 1: 2..32 (32 improves on 16 by 0.005 < 0.01: growth stops there), keeps 16;
    # 64 had run too (side by side): shown, deciding nothing
    assert layers[0] == ("layer 1", [2, 4, 8, 16, 32, 64], 16)
    # layer 2 (narrower than 16): 2, 4, 8 improve; 8 is the last size below 16; keeps 8
    assert layers[1] == ("layer 2", [2, 4, 8], 8)
    # layer 3 (below 8): its best, 4, improves by only 0.001: not added, the search ends
    assert layers[2][0] == "layer 3" and "not added" in plan.steps[2].note
    assert space.decode(plan.result)["model.units"] == [16, 8]
    assert "did not help" in plan.note


def test_pyramid_decisions_do_not_depend_on_how_many_trials_run_at_once():
    space, design = pyramid_for()
    for width in (1, 2, 4):
        tried: set = set()

        def result(vals, tried=tried):
            return scripted(space, growth_loss)(vals) if space.vals_key(vals) in tried else None

        while True:  # run each plan's todo, as the suggest function would, until done
            plan = design.walk(result, width=width)
            if plan.done:
                break
            assert 1 <= len(plan.todo) <= width
            tried |= {space.vals_key(v) for v in plan.todo}
        assert space.decode(plan.result)["model.units"] == [16, 8], width
    # one at a time, the growth tries nothing past where it stops
    assert len(tried) >= 10


def test_pyramid_stops_at_the_output_width_and_at_max_layers():
    space, design = pyramid_for(input_dim=16, output_size=8, min_delta=0.0)
    plan = design.walk(scripted(space, lambda p: -sum(p["model.units"]) / 100))
    # each wider first layer is better: 16 is the cap (the input width); then 8 (<16); 8 is no
    # wider than the output, so no third layer
    assert space.decode(plan.result)["model.units"] == [16, 8]
    assert "no wider than the output" in plan.note
    space, design = pyramid_for(max_layers=1)
    plan = design.walk(scripted(space, growth_loss))
    assert space.decode(plan.result)["model.units"] == [16] and "max_layers" in plan.note
    # the option list: strictly narrowing powers of two, only the last at or below the output
    nets = pyr.networks([2, 4, 8, 16], output_size=4, max_layers=None)
    assert [16, 8, 4] in nets and [16, 8, 2] in nets and [4, 2] not in nets and [8, 8] not in nets
    assert all(all(a > b for a, b in zip(n, n[1:])) for n in nets)


def test_pyramid_refuses_a_space_that_varies_something_else():
    settings = PyramidSettings()
    with pytest.raises(ConfigError, match="pyramid varies only model.units"):
        pyr.space_entries(SearchSpace({"model.dropout": {"uniform": [0, 0.5]}}), 64, 4, settings)
    with pytest.raises(ConfigError, match="grows model.units itself"):
        pyr.space_entries(SearchSpace({"model.units": {"choice": [[8]]}}), 64, 4, settings)
    entries = pyr.space_entries(SearchSpace({"model.dropout": 0.1}), 64, 4, settings)
    assert set(entries) == {"model.dropout", "model.units"}
    with pytest.raises(ConfigError, match="start_units"):
        pyr.space_entries(None, 4, 2, PyramidSettings(start_units=8))


# -- on local[2] -----------------------------------------------------------------------------
def _trial_runs(tmp_path, parent_run_id):
    runs = child_runs(tmp_path, parent_run_id)
    return sorted(runs, key=lambda r: int(r.data.tags["sparkdl_tune.trial"]))


# parallel steps on the warm executors and driver-side trials in the default suite; the same
# sweep on SparkTrials (~30 s, the slowest of the three) is make test-slow's
@pytest.mark.parametrize("mode,runner,engine", [
    pytest.param("parallel", "sparktrials", "hyperopt", marks=pytest.mark.slow),
    ("distributed", None, "hyperopt"), ("parallel", "executors", "hyperopt"),
    ("distributed", None, "optuna")])
def test_a_sweep_runs_step_by_step_and_reports_each_dimension(spark, tiny_tabular, tmp_path,
                                                              mode, runner, engine):
    from sparkdl_tune.search.tuner import tune

    space = {"model.activation": {"choice": ["relu", "tanh"]},
             "training.optimizer": {"choice": ["adam", "sgd", "rmsprop"]}}
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, space, search__name=f"sweep-{mode}", search__algorithm="sweep",
        search__execution_mode=mode, search__parallelism=2, search__max_trials=10,
        training__learning_rate="default", search__trial_epochs=2, training__epochs=3,
        search__engine=engine, **({"search__runner": runner} if runner else {})))
    summary = tune(cfg, spark)
    sweep = summary["sweep"]
    assert [s["name"] for s in sweep["steps"]] == ["model.activation", "training.optimizer"]
    assert [len(s["rows"]) for s in sweep["steps"]] == [2, 3]
    assert summary["trials"] == 4  # 2 + 3, the carried winner once
    first, second = sweep["steps"]
    kept = first["chosen"]
    runs = _trial_runs(tmp_path, summary["parent_run_id"])
    assert len(runs) == 4
    # the second step holds the activation at the first step's winner ...
    by_trial = {int(r.data.tags["sparkdl_tune.trial"]) + 1: r for r in runs}
    for row in second["rows"]:
        assert by_trial[row["trial"]].data.params["model.activation"] == kept
    # ... and its new trials started only once the first step's had ended
    step1 = [by_trial[row["trial"]] for row in first["rows"]]
    new = [by_trial[row["trial"]] for row in second["rows"] if row["trial"] not in
           {row1["trial"] for row1 in first["rows"]}]
    assert len(new) == 2
    assert min(r.info.start_time for r in new) >= max(r.info.end_time for r in step1) - 1000 \
        or min(float(r.data.tags["sparkdl_tune.start"]) for r in new) >= \
        max(float(r.data.tags["sparkdl_tune.start"]) + r.data.metrics["trial_seconds"]
            for r in step1) - 1
    scores = {row["value"]: row["score"] for row in second["rows"]}
    assert second["chosen"] == max(scores, key=scores.get)
    assert sweep["result"] == summary["best_params"]
    assert sweep["confirmed"]["epochs"] == 3 and "test_accuracy" in \
        sweep["confirmed"]["test_metrics"]
    html = open(summary["report"]).read()
    assert "One-at-a-time sweep" in html and "training.optimizer" in html
    stored = json.loads((tmp_path / "out" / f"sweep-{mode}" / "summary.json").read_text())
    assert stored["sweep"]["steps"] == sweep["steps"]


# parallel trials on the warm executors in the default suite (about half the time of a Spark
# job per trial); the same growth on SparkTrials, and driven by optuna, is make test-slow's
# (the default suite drives a design with optuna in the sweep test above)
@pytest.mark.parametrize("runner,engine", [
    pytest.param("sparktrials", "hyperopt", marks=pytest.mark.slow), ("executors", "hyperopt"),
    pytest.param("executors", "optuna", marks=pytest.mark.slow)])
def test_a_pyramid_grows_the_network_on_local2(spark, tiny_tabular, tmp_path, runner, engine):
    from sparkdl_tune.search.tuner import tune

    cfg = load_config(None, overrides=[o for o in tune_overrides(
        tiny_tabular, tmp_path, {}, search__name="pyramid", search__algorithm="pyramid",
        search__execution_mode="parallel", search__parallelism=2, search__max_trials=20,
        search__runner=runner, search__engine=engine,
        search__pyramid__min_delta=0.0, search__pyramid__max_layers=2, search__trial_epochs=2,
        training__epochs=2) if not o.startswith("search.space=")])
    summary = tune(cfg, spark)
    grown = summary["pyramid"]
    layers = grown["steps"]
    assert layers[0]["name"] == "layer 1" and layers[0]["rows"][0]["units"] == 2
    widths = [r["units"] for r in layers[0]["rows"]]
    assert widths == sorted(widths) and set(widths) <= {2, 4, 8}  # up to the input width, 8
    chosen = grown["result"]["model.units"]
    assert chosen == summary["best_params"]["model.units"]
    assert chosen[0] == layers[0]["chosen"]
    assert all(a > b for a, b in zip(chosen, chosen[1:])) and len(chosen) <= 2
    assert "stopped because" in grown["note"]
    runs = _trial_runs(tmp_path, summary["parent_run_id"])
    assert len(runs) == summary["trials"] == sum(len(s["rows"]) for s in layers)
    assert "Pyramid growth" in open(summary["report"]).read()


# -- baseline ----------------------------------------------------------------------------------
def test_relative_error_drop_for_an_accuracy_and_for_a_loss():
    from sparkdl_tune.search.baseline import overrides, relative_error_drop

    assert relative_error_drop(0.80, 0.90, "max") == pytest.approx(0.5)  # half the error gone
    assert relative_error_drop(0.90, 0.85, "max") == pytest.approx(-0.5)  # worse: negative
    assert relative_error_drop(1.0, 1.0, "max") is None
    assert relative_error_drop(0.40, 0.30, "min") == pytest.approx(0.25)
    assert relative_error_drop(0.0, 0.1, "min") is None
    assert overrides(True) == {"training.batch_size": 32, "training.learning_rate": 1e-3}
    assert overrides(False) is None
    assert overrides({"training.batch_size": 64}) == {"training.batch_size": 64}
    with pytest.raises(ConfigError, match="search.baseline"):
        overrides("yes please")


def test_a_search_with_a_baseline_reports_its_relative_error_drop(spark, tiny_tabular, tmp_path):
    from mlflow.tracking import MlflowClient

    from sparkdl_tune.search import baseline
    from sparkdl_tune.search.tuner import tune

    space = {"training.learning_rate": {"loguniform": [3e-3, 3e-2]}}
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp_path, space, search__name="gain", search__baseline="true",
        search__max_trials=2, search__algorithm="random", search__trial_epochs=2,
        training__epochs=3))
    summary = tune(cfg, spark)
    b = summary["baseline"]
    assert b["config"] == {"training.batch_size": 32, "training.learning_rate": 1e-3}
    drops = b["relative_error_drop"]
    assert drops["validation"] == pytest.approx(
        (b["best_score"] - b["score"]) / (1 - b["score"]), abs=1e-4)
    final_test = summary["final"]["test_metrics"]["test_accuracy"]
    assert b["final_test"] == final_test
    assert drops["test"] == pytest.approx((final_test - b["test"]) / (1 - b["test"]), abs=1e-4)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(b["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["sparkdl_tune.kind"] == "baseline"
    assert run.data.params["training.batch_size"] == "32"
    assert run.data.params["training.epochs"] == "2"  # the trial budget, like a trial
    assert run.data.metrics["objective"] == b["score"]
    assert "Gain over the baseline" in open(summary["report"]).read()
    stored = json.loads((tmp_path / "out" / "gain" / "summary.json").read_text())
    assert stored["baseline"]["relative_error_drop"] == drops
    # a resumed search reuses the finished baseline: no second training (no data needed)
    again = baseline.run(baseline.check(cfg), None, summary["parent_run_id"], "val_accuracy",
                         "max", 2)
    assert again["run_id"] == b["run_id"] and again["score"] == b["score"]


def test_the_retrain_takes_the_designs_answer_not_the_best_trial_seen_on_the_way():
    from types import SimpleNamespace

    from sparkdl_tune.search.tuner import _design_choice
    from sparkdl_tune.spec.trial import TrialRecord

    space, design = pyramid_for()
    units = next(d for d in space.dimensions if d.name == "model.units")
    records = {}
    for i, net in enumerate(units.spec.values):  # every network ran (as speculative trials may)
        loss = growth_loss({"model.units": net})
        records[i] = TrialRecord(number=i, ok=True, vals={units.label: [i]},
                                 params={"model.units": net}, loss=loss, score=-loss)
    monitor = SimpleNamespace(records=records)
    best_seen = min(records.values(), key=lambda r: r.loss)
    chosen = _design_choice(design, space, monitor)
    assert chosen.params["model.units"] == [16, 8]  # what the growth decided
    assert best_seen.params["model.units"] != [16, 8]  # a deeper, wider net scored better
