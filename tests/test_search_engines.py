"""The search engine registry: ``search.engine`` takes exactly its names, each engine module has
the seam's API, and ``search.algorithm`` is checked against the chosen engine's algorithms plus
the package's own (a new engine is its module plus one registry line)."""

from __future__ import annotations

import pytest

from sparkdl_tune.config.loader import load_config
from sparkdl_tune.errors import ConfigError
from sparkdl_tune.search import engines
from sparkdl_tune.search.algorithms import PACKAGE, algorithms


@pytest.mark.parametrize("name", list(engines.ENGINES))
def test_each_engine_module_has_the_seams_api(name):
    engine = engines.load(name)
    assert engine.__name__ == engines.ENGINES[name]
    assert engine.ALGORITHMS and all(isinstance(a, str) for a in engine.ALGORITHMS)
    assert not set(engine.ALGORITHMS) & set(PACKAGE)
    assert callable(engine.algorithm) and callable(engine.run)
    assert algorithms(name) == (*engine.ALGORITHMS, *PACKAGE)


def test_the_default_engine_is_hyperopt_and_the_config_takes_the_registry_names():
    assert load_config(None).search.engine == "hyperopt" == engines.DEFAULT
    for name in engines.ENGINES:
        assert load_config(None, overrides=[f"search.engine={name}"]).search.engine == name
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides=["search.engine=hyperop"])
    line = str(err.value)
    assert "\n" not in line and "'search.engine' is 'hyperop'" in line
    assert "not one of: " + ", ".join(engines.ENGINES) in line
    assert "did you mean 'hyperopt'?" in line
    with pytest.raises(ConfigError, match="unknown search engine 'nope'; use one of hyperopt"):
        engines.load("nope")


def test_the_algorithm_is_checked_against_the_engines_own_and_the_packages():
    for name in algorithms("hyperopt"):
        assert load_config(None, overrides=[f"search.algorithm={name}"]).search.algorithm == name
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides=["search.algorithm=tpee"])
    assert "'search.algorithm' is 'tpee'" in str(err.value)
    assert "did you mean 'tpe'?" in str(err.value)


def test_an_unknown_engine_stops_tune_with_one_line_and_exit_2(tmp_path):
    from test_bad_input import assert_one_error_line, run_console

    proc = run_console("tune", "conf/jobs/fashion_tune.yaml", "search.engine=optunaa",
                       f"search.output_dir={tmp_path / 'out'}")
    assert_one_error_line(proc, "search.engine", "'optunaa'", "not one of: hyperopt")


def test_a_search_cannot_be_resumed_with_another_engine(monkeypatch):
    """The engine enters the search's definition when it is not hyperopt (so searches
    recorded before engines could be chosen stay unchanged): a rerun with another engine is
    another search, refused in one line (exit 2), even with resume=extend."""
    from sparkdl_tune.search import definition as d
    from sparkdl_tune.search.space import SearchSpace

    space = SearchSpace.from_dict({"training.batch_size": {"choice": [32, 64]}})
    recorded = d.to_tag(d.definition(load_config(None), space, "val_loss", "min"))
    monkeypatch.setitem(engines.ENGINES, "other", engines.ENGINES["hyperopt"])
    cfg = load_config(None)
    other = cfg.search.__class__(**{**cfg.search.__dict__, "engine": "other"})
    now = d.definition(cfg.__class__(**{**cfg.__dict__, "search": other}), space, "val_loss",
                       "min")
    for resume in ("auto", "extend"):
        with pytest.raises(ConfigError) as err:
            d.check("s", recorded, now, resume, 3)
        assert "search.engine: (unset) -> \"other\"" in str(err.value)
        assert "\n" not in str(err.value)


def test_an_algorithm_of_another_engine_names_that_engine_and_nsga2_needs_two_objectives():
    """``nsga2`` is Optuna's: under hyperopt the one line says which engine has it; under
    optuna without ``search.objectives`` it is refused before any training."""
    from sparkdl_tune.search import pareto

    with pytest.raises(ConfigError) as err:
        load_config(None, overrides=["search.algorithm=nsga2"])
    assert "it is optuna's: set search.engine=optuna" in str(err.value)
    cfg = load_config(None, overrides=["search.engine=optuna", "search.algorithm=nsga2"])
    with pytest.raises(ConfigError) as err:
        pareto.second_objective(cfg.search, "val_accuracy")
    assert "search.objectives=[val_accuracy, params]" in str(err.value)
    two = load_config(None, overrides=["search.engine=optuna", "search.algorithm=nsga2",
                                       "search.objectives=[val_accuracy,params]"])
    assert pareto.second_objective(two.search, "val_accuracy") == "params"
