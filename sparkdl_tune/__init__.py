"""sparkdl_tune: train and tune Keras models on Parquet data with Spark.

The public API, for notebooks and scripts (the CLI and ``jobs/*.py`` call the same functions)::

    import sparkdl_tune as sdt

    spark = sdt.get_spark()
    sdt.prepare(sdt.FashionMnistSource("/usr/share/datasets/fashion-mnist"), "data/fm", spark)
    cfg = sdt.load_config("conf", files=["conf/jobs/fashion_tune.yaml"],
                          overrides=["search.max_trials=4"])
    summary = sdt.tune(cfg, spark)                 # best_params.json, summary.json, report
    space = sdt.SearchSpace({"training.learning_rate": sdt.LogUniform(1e-4, 3e-3),
                             "model.units": sdt.Choice([[256, 128], [512]])})
    summary = sdt.tune(cfg, spark, space=space)    # a space built in Python
    cfg = sdt.with_values(cfg, summary["best_params"])
    result = sdt.train(cfg, spark)                 # logs (and registers) the model
    model = sdt.load_model(result["model_uri"], cfg.mlflow)
    sdt.report(cfg.mlflow, cfg.search.name, "out/report")   # plots + HTML page of the search

An error leaving these functions has the credentials in any URI it names redacted
(``http://***@host``), as the CLI's one line has, and every place they will write is checked
before Spark starts. Every name is resolved on first use, so ``import sparkdl_tune`` imports no
TensorFlow, Spark or MLflow and ``--help`` stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> "module:attribute", imported when first asked for
_LAZY = {
    # configuration
    "load_config": "config.loader:load_config",
    "with_values": "config.loader:with_values",
    "Config": "config.schema:Config",
    # Spark
    "get_spark": "driver.session:get_spark",
    # prepare and its sources
    "prepare": "driver.preparation:prepare",
    "FashionMnistSource": "driver.datasets:FashionMnistSource",
    "TabularSource": "driver.datasets:TabularSource",
    "SyntheticRegressionSource": "driver.datasets:SyntheticRegressionSource",
    "SyntheticClassificationSource": "driver.datasets:SyntheticClassificationSource",
    "validate_dataset": "driver.validation:validate_dataset",
    "read_manifest": "driver.dataset:read_manifest",
    "read_split": "driver.dataset:read_split",
    # search spaces built in Python (YAML: see README, "Search spaces")
    "SearchSpace": "search.space:SearchSpace",
    "Choice": "search.dimensions:Choice",
    "Branch": "search.dimensions:Branch",
    "Uniform": "search.dimensions:Uniform",
    "LogUniform": "search.dimensions:LogUniform",
    "QUniform": "search.dimensions:QUniform",
    "IntRange": "search.dimensions:IntRange",
    "Fixed": "search.dimensions:Fixed",
    # workflows
    "train": "driver.train:train",
    "tune": "search.tuner:tune",
    "report": "reporting:report",
    "load_model": "tracking.model:load_model",
    # errors
    "SparkdlTuneError": "errors:SparkdlTuneError",
    "UserError": "errors:UserError",
    "ConfigError": "errors:ConfigError",
    "DataError": "errors:DataError",
    "TrialFailed": "errors:TrialFailed",
    "FatalError": "errors:FatalError",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attr = target.split(":")
    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), attr)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
