"""Search spaces: YAML and Python declarations, sampling bounds, decoding, grids, errors."""

import math
import pathlib
import pickle

import numpy as np
import pytest
from hyperopt import STATUS_OK, Trials, fmin, rand, space_eval
from hyperopt.pyll import stochastic

from sparkdl_tune.errors import ConfigError
from sparkdl_tune.search.engines.hyperopt import space_expression
from sparkdl_tune.search.space import (
    Branch,
    Choice,
    Fixed,
    IntRange,
    LogUniform,
    QUniform,
    SearchSpace,
    Uniform,
)

CONF = pathlib.Path(__file__).resolve().parents[1] / "conf" / "spaces"

EVERY_KIND = {
    "training.learning_rate": {"loguniform": ["1e-4", 3.0e-3]},
    "training.batch_size": {"choice": [64, 128, 256]},
    "model.units": {"choice": [[256, 128], [512]]},
    "model.dropout": {"uniform": [0.0, 0.5]},
    "model.layer_units": {"quniform": [0.5, 2.5, 0.25]},
    "model.filters": {"quniform": [16, 128, 16]},
    "model.n_layers": {"int": [1, 4]},
    "model.kernel_size": {"int": [3, 9, 3]},
    "model.task": "classification",
    "model.input_shape": {"fixed": [28, 28, 1]},
}

NESTED = {
    "training.learning_rate": {"loguniform": [1e-4, 1e-2]},
    "model.architecture": {"choice": [
        {"value": "mlp", "model.units": {"choice": [[256, 128], [512]]},
         "model.shape": {"choice": [
             {"value": "funnel", "model.n_layers": {"int": [2, 4]}}, "constant"]}},
        {"value": "cnn2d", "model.conv_blocks": {"choice": [[{"filters": 32}],
                                                            [{"filters": 64}]]},
         "model.dropout": {"uniform": [0.0, 0.3]}},
        "linear",
    ]},
}


def check_bounds(p):
    assert 1e-4 <= p["training.learning_rate"] <= 3e-3
    assert p["training.batch_size"] in (64, 128, 256)
    assert p["model.units"] in ([256, 128], [512])
    assert 0.0 <= p["model.dropout"] <= 0.5
    lu = p["model.layer_units"]
    assert 0.5 <= lu <= 2.5 and abs(lu / 0.25 - round(lu / 0.25)) < 1e-9
    assert isinstance(p["model.filters"], int) and p["model.filters"] % 16 == 0
    assert 16 <= p["model.filters"] <= 128
    assert isinstance(p["model.n_layers"], int) and 1 <= p["model.n_layers"] <= 4
    assert p["model.kernel_size"] in (3, 6, 9) and isinstance(p["model.kernel_size"], int)
    assert p["model.task"] == "classification" and p["model.input_shape"] == [28, 28, 1]


def test_every_kind_sampled_by_hyperopt_stays_in_bounds():
    space = SearchSpace.from_dict(EVERY_KIND)
    rng = np.random.default_rng(0)
    points = [space.decode(stochastic.sample(space_expression(space), rng)) for _ in range(300)]
    for p in points:
        check_bounds(p)
    lrs = np.array([p["training.learning_rate"] for p in points])
    # log-uniform: about half the samples fall below the geometric mean of the bounds
    assert 0.4 < np.mean(lrs < math.sqrt(1e-4 * 3e-3)) < 0.6
    assert {p["model.n_layers"] for p in points} == {1, 2, 3, 4}
    assert {p["model.kernel_size"] for p in points} == {3, 6, 9}
    assert {p["model.filters"] for p in points} == set(range(16, 129, 16))


def test_every_kind_sampled_by_the_space_stays_in_bounds():
    space = SearchSpace.from_dict(EVERY_KIND)
    rng = np.random.default_rng(1)
    for _ in range(300):
        check_bounds(space.decode(space.sample_vals(rng)))


def test_decode_of_fmin_best_gives_real_values_not_indices():
    space = SearchSpace.from_dict(EVERY_KIND)

    def objective(point):
        p = space.decode(point)
        return (p["training.batch_size"] != 256) + (p["model.units"] != [512]) \
            + p["model.dropout"]

    trials = Trials()
    best = fmin(objective, space_expression(space), algo=rand.suggest, max_evals=60,
                trials=trials, rstate=np.random.default_rng(3), show_progressbar=False)
    assert best["training.batch_size"] == 2 and best["model.units"] == 1  # hyperopt indices
    decoded = space.decode(best)
    assert decoded["training.batch_size"] == 256 and decoded["model.units"] == [512]
    check_bounds(decoded)
    assert decoded == space.decode(space_eval(space_expression(space), best))
    assert decoded == space.decode(trials.best_trial["misc"]["vals"])


def test_nested_choice_decodes_only_the_active_branch():
    space = SearchSpace.from_dict(NESTED)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        point = stochastic.sample(space_expression(space), rng)
        p = space.decode(point)
        arch = p["model.architecture"]
        seen.add((arch, p.get("model.shape")))
        expected = {"training.learning_rate", "model.architecture"} | {
            "mlp": {"model.units", "model.shape"},
            "cnn2d": {"model.conv_blocks", "model.dropout"}, "linear": set()}[arch]
        if p.get("model.shape") == "funnel":
            expected.add("model.n_layers")
            assert 2 <= p["model.n_layers"] <= 4
        assert set(p) == expected
    assert seen == {("mlp", "funnel"), ("mlp", "constant"), ("cnn2d", None), ("linear", None)}


def test_nested_vals_use_branch_labels_and_decode_the_same_as_points():
    space = SearchSpace.from_dict(NESTED)
    assert "model.architecture=mlp/model.shape=funnel/model.n_layers" in space.labels
    trials = Trials()
    fmin(lambda point: 0.0, space_expression(space), algo=rand.suggest, max_evals=40,
         trials=trials, rstate=np.random.default_rng(0), show_progressbar=False)
    for trial in trials.trials:
        vals = trial["misc"]["vals"]
        spec = {k: v[0] for k, v in vals.items() if v}
        assert space.decode(vals) == space.decode(space_eval(space_expression(space), spec))
        assert space.vals_key(vals) == space.vals_key(spec)


def test_python_constructors_build_the_same_space_as_yaml():
    py = SearchSpace({
        "training.learning_rate": LogUniform(1e-4, 1e-2),
        "model.architecture": Choice([
            Branch("mlp", {"model.units": Choice([[256, 128], [512]]),
                           "model.shape": Choice([Branch("funnel", {
                               "model.n_layers": IntRange(2, 4)}), "constant"])}),
            Branch("cnn2d", {"model.conv_blocks": Choice([[{"filters": 32}],
                                                          [{"filters": 64}]]),
                             "model.dropout": Uniform(0.0, 0.3)}),
            "linear"]),
    })
    yml = SearchSpace.from_dict(NESTED)
    assert py.labels == yml.labels
    rng = np.random.default_rng(0)
    for _ in range(20):
        vals = yml.sample_vals(rng)
        assert py.decode(vals) == yml.decode(vals)
    assert [d.kind for d in py.dimensions][:2] == ["loguniform", "choice"]
    assert QUniform(0, 10, 2.5).grid() == [0.0, 2.5, 5.0, 7.5, 10.0]
    assert Fixed([1]).real() == [1]


def test_pickled_space_decodes_the_same():
    space = SearchSpace.from_dict(NESTED)
    vals = space.sample_vals(np.random.default_rng(0))
    again = pickle.loads(pickle.dumps(space))
    assert again.decode(vals) == space.decode(vals) and again.labels == space.labels


def test_grid_points_enumerate_a_discrete_space_in_order():
    space = SearchSpace.from_dict({
        "training.batch_size": {"choice": [64, 128]},
        "model.n_layers": {"int": [1, 3]},
        "model.task": "regression",
        "model.architecture": {"choice": [
            {"value": "mlp", "model.layer_units": {"quniform": [64, 128, 64]}}, "linear"]},
    })
    assert space.is_discrete()
    points = space.grid_points()
    assert len(points) == 2 * 3 * (2 + 1)
    assert points[0] == {"training.batch_size": 64, "model.n_layers": 1, "model.task": "regression",
                         "model.architecture": "mlp", "model.layer_units": 64}
    assert points[2] == {"training.batch_size": 64, "model.n_layers": 1, "model.task": "regression",
                         "model.architecture": "linear"}
    assert points[-1]["training.batch_size"] == 128 and points[-1]["model.n_layers"] == 3
    assert len({repr(sorted(p.items())) for p in points}) == len(points)
    assert space.grid_points() == points


def test_grid_points_refuse_a_continuous_dimension():
    space = SearchSpace.from_dict(EVERY_KIND, source="conf/spaces/x.yaml")
    assert not space.is_discrete()
    with pytest.raises(ConfigError, match=r"conf/spaces/x.yaml: grid search needs a discrete "
                                          r"space, but 'training.learning_rate' is loguniform"):
        space.grid_points()


@pytest.mark.parametrize("entry, message", [
    ({"uniform": [0.5, 0.1]}, "uniform low must be < high, got [0.5, 0.1]; swap the bounds"),
    ({"int": [5, 1]}, "int low must be <= high, got [5, 1]; swap the bounds"),
    ({"choice": []}, "choice needs a non-empty list of options, got []"),
    ({"unifrom": [0, 1]}, "unknown type 'unifrom'; did you mean 'uniform'?"),
    ({"gaussian": [0, 1]}, "unknown type 'gaussian'; use one of choice, uniform"),
    ({"loguniform": [0, 1]}, "loguniform low must be > 0, got 0; use a positive lower bound "
                             "such as 1e-5"),
    ({"loguniform": [-1.0, 1]}, "loguniform low must be > 0, got -1.0"),
    ({"quniform": [0, 10, 0]}, "quniform q must be > 0, got 0"),
    ({"quniform": [0, 10, -2]}, "quniform q must be > 0, got -2"),
    ({"int": [1, 10, 0]}, "int step must be > 0, got 0"),
    ({"uniform": [0]}, "uniform takes [low, high], got [0]"),
    ({"quniform": [0, 1]}, "quniform takes [low, high, q], got [0, 1]"),
    ({"int": [1, 2, 3, 4]}, "int takes [low, high] or [low, high, step], got [1, 2, 3, 4]"),
    ({"uniform": "0..1"}, "uniform takes [low, high], got '0..1'"),
    ({"uniform": ["a", 1]}, "uniform low must be a number, got 'a'"),
    ({"int": [1.5, 4]}, "int low must be a finite integer, got 1.5"),
    ({"quniform": [1, 10, 4]}, "quniform low 1 is not a multiple of q 4; hyperopt rounds"),
    ({"uniform": [0, 1], "choice": [1]}, "'uniform' has extra keys ['choice']"),
    ([1, 2], "a bare list is ambiguous; write {choice: [...]}"),
    ({"choice": [{"value": "a"}, {"value": "a"}]}, "two branches with value 'a'"),
    ({"choice": [{"model.units": {"choice": [[1]]}}]}, "has dotted keys like a branch but no "
                                                       "'value'"),
])
def test_invalid_entry_fails_at_load_with_a_one_line_message(entry, message):
    with pytest.raises(ConfigError) as err:
        SearchSpace.from_dict({"model.ok": {"choice": [1]}, "training.x": entry},
                              source="conf/spaces/bad.yaml")
    text = str(err.value)
    assert text.startswith("conf/spaces/bad.yaml: space entry 'training.x': ")
    assert message in text and "\n" not in text


@pytest.mark.parametrize("data, message", [
    ({}, "the space must be a non-empty mapping"),
    ({"lr": {"uniform": [0, 1]}}, "space entry 'lr': key must be a dotted config key such as "
                                  "'model.lr'"),
    ({"space": {"a.b": 1}, "algo": "tpe"}, "unknown top-level key 'algo'"),
    ({"model.units": {"choice": [[1]]},
      "model.architecture": {"choice": [{"value": "mlp", "model.units": {"choice": [[2]]}}]}},
     "space entries 'model.units' and 'model.architecture=mlp/model.units' set the same "
     "config key at once"),
    ({"model.architecture": {"choice": [
        {"value": "mlp", "model.units": {"loguniform": [0, 1]}}]}},
     "space entry 'model.architecture=mlp/model.units': loguniform low must be > 0"),
])
def test_invalid_space_fails_at_load(data, message):
    with pytest.raises(ConfigError, match=None) as err:
        SearchSpace.from_dict(data)
    assert message in str(err.value)


def test_python_constructors_validate_too():
    with pytest.raises(ConfigError, match="loguniform low must be > 0, got 0"):
        LogUniform(0, 1)
    with pytest.raises(ConfigError, match="choice needs a non-empty list"):
        Choice([])
    with pytest.raises(ConfigError, match="quniform q must be > 0"):
        QUniform(0, 1, 0)


def test_yaml_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("space:\n  model.dropout: {uniform: [0, 0.5]}\n"
                    "  training.learning_rate: {loguniform: [0, 1.0e-2]}\n")
    with pytest.raises(ConfigError) as err:
        SearchSpace.from_yaml(path)
    assert str(err.value) == (
        f"{path}:3: space entry 'training.learning_rate': loguniform low must be > 0, got 0; "
        "use a positive lower bound such as 1e-5")
    with pytest.raises(ConfigError, match="does not exist"):
        SearchSpace.from_yaml(tmp_path / "missing.yaml")


def test_a_space_entry_given_twice_names_the_file_and_both_lines(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("space:\n  model.dropout: {uniform: [0, 0.5]}\n"
                    "  training.learning_rate: {loguniform: [1.0e-4, 1.0e-2]}\n"
                    "  model.dropout: {choice: [0.1, 0.2]}\n")
    with pytest.raises(ConfigError) as err:
        SearchSpace.from_yaml(path)
    assert str(err.value) == (
        f"{path}: key 'space.model.dropout' is given twice (lines 2 and 4); keep one")
    # inside a branch too
    path.write_text("space:\n  model.architecture:\n    choice:\n      - value: mlp\n"
                    "        model.units: {choice: [[8], [16]]}\n"
                    "        model.units: {choice: [[32]]}\n")
    with pytest.raises(ConfigError, match=r"key 'space.model.architecture.choice\[0\]."
                                          r"model.units' is given twice \(lines 5 and 6\)"):
        SearchSpace.from_yaml(path)


def test_shipped_spaces_load_and_sample():
    mlp = SearchSpace.from_yaml(CONF / "mlp.yaml")
    assert [d.name for d in mlp.dimensions] == [
        "model.units", "model.activation", "model.dropout", "model.l2", "training.optimizer",
        "training.learning_rate", "training.batch_size"]
    cnn = SearchSpace.from_yaml(CONF / "cnn.yaml")
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = mlp.decode(stochastic.sample(space_expression(mlp), rng))
        assert p["model.units"] in ([256, 128], [512, 256], [512, 256, 128], [1024, 512])
        assert 1e-6 <= p["model.l2"] <= 1e-3 and 1e-4 <= p["training.learning_rate"] <= 3e-3
        c = cnn.decode(stochastic.sample(space_expression(cnn), rng))
        assert c["model.architecture"] == "cnn2d"
        assert all({"filters", "kernel_size", "pooling", "batch_norm"} <= set(block)
                   for block in c["model.conv_blocks"])


def test_module_docstring_example_loads():
    import yaml

    from sparkdl_tune.search import space as module

    text = module.__doc__.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    space = SearchSpace.from_dict(yaml.safe_load(text))
    assert "model.architecture=cnn2d/model.conv_blocks" in space.labels
    p = space.decode(space.sample_vals(np.random.default_rng(0)))
    assert p["model.task"] == "classification" and p["model.input_shape"] == [28, 28, 1]


def test_decode_rejects_values_from_another_space():
    space = SearchSpace.from_dict(EVERY_KIND)
    with pytest.raises(ValueError, match="no value for 'training.learning_rate'"):
        space.decode({"other.key": 1})
    with pytest.raises(ValueError, match="the point has no 'training.learning_rate'"):
        space.decode({"training": {}})


def test_objective_point_is_nested_like_a_config_file():
    space = SearchSpace.from_dict(NESTED)
    trials = Trials()
    points = []
    fmin(lambda p: points.append(p) or {"loss": 0.0, "status": STATUS_OK},
         space_expression(space), algo=rand.suggest, max_evals=10, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False)
    assert all(set(p) == {"training", "model"} for p in points)
    assert all(p["model"]["architecture"]["value"] in ("mlp", "cnn2d", "linear") for p in points)
