"""Config layering (defaults < base < env < files < overrides) and its error messages."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from sparkdl_tune.config.loader import as_flat_dict, load_config
from sparkdl_tune.errors import ConfigError


@pytest.fixture
def conf(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "prod").mkdir()
    (tmp_path / "base" / "spark.yaml").write_text(
        "spark:\n  app_name: from-base\n  log_level: INFO\n  conf:\n    spark.a: '1'\n")
    (tmp_path / "base" / "training.yaml").write_text("training:\n  epochs: 5\n")
    (tmp_path / "prod" / "spark.yaml").write_text(
        "spark:\n  app_name: from-prod\n  conf:\n    spark.b: '2'\n")
    return tmp_path


def test_layers_apply_in_order(conf):
    base = load_config(conf)  # no env: base only
    assert base.spark.app_name == "from-base" and base.training.epochs == 5
    assert base.mlflow.experiment == "sparkdl-tune"  # package default survives
    prod = load_config(conf, env="prod")
    assert prod.spark.app_name == "from-prod"
    assert prod.spark.log_level == "INFO"  # from base, not touched by prod
    assert prod.spark.conf == {"spark.a": "1", "spark.b": "2"}  # mappings merge
    cli = load_config(conf, env="prod", overrides=["spark.app_name=from-cli",
                                                   "training.epochs=7",
                                                   "spark.conf.spark.driver.memory=1g"])
    assert cli.spark.app_name == "from-cli" and cli.training.epochs == 7
    assert cli.spark.conf["spark.driver.memory"] == "1g"


def test_job_file_sits_between_env_and_overrides(conf, tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("training:\n  epochs: 9\n  learning_rate: 0.01\n")
    cfg = load_config(conf, env="prod", files=[job], overrides=["training.epochs=2"])
    assert cfg.training.epochs == 2 and cfg.training.learning_rate == 0.01


def test_config_is_frozen_and_typed(conf):
    cfg = load_config(conf, env="prod", overrides=["training.learning_rate=1"])
    assert isinstance(cfg.training.learning_rate, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.training.epochs = 1  # type: ignore[misc]
    flat = as_flat_dict(cfg)
    assert flat["training.epochs"] == 5 and flat["spark.app_name"] == "from-prod"


def test_unknown_key_names_file_line_and_suggestion(conf):
    (conf / "prod" / "training.yaml").write_text("training:\n  batch_size: 64\n  epoch: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(conf, env="prod")
    msg = str(err.value)
    assert f"{conf / 'prod' / 'training.yaml'}:3" in msg
    assert "unknown key 'training.epoch'" in msg and "did you mean 'training.epochs'?" in msg


def test_unknown_section_suggests_closest(conf):
    (conf / "base" / "x.yaml").write_text("trainig:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"x.yaml:1: unknown key 'trainig'; did you mean "
                                          r"'training'\?"):
        load_config(conf, env="prod")


def test_wrong_type_names_file_and_key(conf):
    (conf / "prod" / "training.yaml").write_text("training:\n  epochs: three\n")
    with pytest.raises(ConfigError) as err:
        load_config(conf, env="prod")
    assert "training.yaml:2: 'training.epochs' must be an integer, got 'three'" in str(err.value)


def test_override_errors(conf):
    with pytest.raises(ConfigError, match=r"command line: unknown key 'training.batchsize'; "
                                          r"did you mean 'training.batch_size'\?"):
        load_config(conf, overrides=["training.batchsize=32"])
    with pytest.raises(ConfigError, match="is not key=value"):
        load_config(conf, overrides=["training.epochs"])
    with pytest.raises(ConfigError, match="command line: 'training.epochs' must be an integer"):
        load_config(conf, overrides=["training.epochs=1.5"])


def test_invalid_yaml_and_missing_file(conf, tmp_path):
    (conf / "base" / "bad.yaml").write_text("spark: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml:2: not valid YAML"):
        load_config(conf)
    (conf / "base" / "bad.yaml").unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(conf, files=[tmp_path / "nope.yaml"])


def test_a_key_given_twice_names_the_file_both_lines_and_the_key(conf, tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("training:\n  epochs: 3\n  batch_size: 64\n  epochs: 9\n")
    with pytest.raises(ConfigError) as err:
        load_config(conf, files=[job])
    assert str(err.value) == (
        f"{job}: key 'training.epochs' is given twice (lines 2 and 4); keep one")
    # at any depth, in a flow mapping too, and in the layers under conf/
    job.write_text("search:\n  space:\n    model.dropout: {uniform: [0, 0.5]}\n"
                   "    training.epochs: {choice: [1, 2]}\n"
                   "    model.dropout: {uniform: [0.1, 0.2]}\n")
    with pytest.raises(ConfigError, match=r"key 'search.space.model.dropout' is given twice "
                                          r"\(lines 3 and 5\)"):
        load_config(conf, files=[job])
    (conf / "base" / "spark.yaml").write_text("spark:\n  conf: {spark.a: '1', spark.a: '2'}\n")
    with pytest.raises(ConfigError, match=r"spark.yaml: key 'spark.conf.spark.a' is given twice "
                                          r"\(lines 2 and 2\)"):
        load_config(conf)


def test_the_same_key_in_two_mappings_or_over_a_merge_key_is_fine(conf, tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("execution:\n  seed: 1\nsearch:\n  seed: 2\n"
                   "training:\n  <<: {epochs: 3, batch_size: 16}\n  epochs: 5\n")
    cfg = load_config(conf, files=[job])
    assert (cfg.execution.seed, cfg.search.seed) == (1, 2)
    assert (cfg.training.epochs, cfg.training.batch_size) == (5, 16)


def test_repository_conf_loads():
    cfg = load_config("conf")
    assert cfg.training.batch_size > 0


def test_no_env_means_no_overlay(conf):
    for env in (None, ""):
        assert load_config(conf, env=env).spark.app_name == "from-base"
        assert load_config(None, env=env).mlflow.experiment == "sparkdl-tune"
    assert load_config(conf, env="prod").spark.app_name == "from-prod"


def test_a_missing_overlay_is_an_error_naming_it_the_envs_and_the_fix(conf):
    (conf / "databricks").mkdir()
    (conf / "jobs").mkdir()
    (conf / "spaces").mkdir()
    with pytest.raises(ConfigError) as err:
        load_config(conf, env="staging")
    msg = str(err.value)
    assert "\n" not in msg
    assert f"environment overlay {conf / 'staging'} does not exist" in msg
    assert f"environments in {conf}: databricks, prod;" in msg  # not base, jobs or spaces
    assert "--env" in msg and f"create {conf / 'staging'}/" in msg and "no overlay" in msg
    # folders that hold other layers are not overlays
    with pytest.raises(ConfigError, match=r"'jobs' is not an environment overlay .*"
                                          r"environments in .*: databricks, prod;"):
        load_config(conf, env="jobs")
    # no conf folder at all: still an error, not a silent skip
    with pytest.raises(ConfigError, match=r"environment overlay .*nowhere.prod does not exist; "
                                          r"environments in .*nowhere: none;"):
        load_config(conf / "nowhere", env="prod")
    with pytest.raises(ConfigError, match="overlay 'prod' was asked for but no conf folder"):
        load_config(None, env="prod")


def test_the_cli_exits_2_on_a_missing_overlay_and_defaults_to_none(conf, tmp_path, capsys):
    from sparkdl_tune.cli import build_parser, main

    code = main(["validate", "--dataset", str(tmp_path / "ds"), "--conf-dir", str(conf),
                 "--env", "staging"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"sparkdl-tune: error: environment overlay {conf / 'staging'} does "
                          "not exist; environments in")
    assert build_parser().parse_args(["validate", "--dataset", "d"]).env is None


HEAVY = {"tensorflow", "keras", "pyspark", "py4j", "mlflow", "horovod", "hyperopt",
         "petastorm", "pyarrow", "pandas"}


def test_help_imports_nothing_heavy():
    # what makes --help quick is what it does not import; -X importtime lists every module
    # the real command imported (on stderr), however late
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "sparkdl_tune.cli",
                           "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "prepare" in proc.stdout
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0]
                for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "sparkdl_tune" in imported  # the listing works
    assert sorted(imported & HEAVY) == []
    probe = ("import sys, sparkdl_tune.cli, sparkdl_tune.config.loader; "
             f"print(sorted(m for m in {sorted(HEAVY)!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "[]"


def test_bare_on_and_off_are_the_words_where_a_setting_takes_them():
    # YAML 1.1 turns a bare off into False; in_memory_cache takes the word
    cfg = load_config(None, overrides=["data.in_memory_cache=off"])
    assert cfg.data.in_memory_cache == "off"
    assert load_config(None, overrides=["data.in_memory_cache=on"]).data.in_memory_cache == "on"


def test_learning_rate_default_is_each_optimizers_own_keras_default(conf):
    """``training.learning_rate: default`` resolves per optimizer, to what Keras itself uses."""
    import inspect

    import tensorflow as tf

    from sparkdl_tune.config.model_spec import KERAS_DEFAULT_RATES

    classes = {"sgd": "SGD", "adagrad": "Adagrad", "adadelta": "Adadelta",
               "rmsprop": "RMSprop", "adam": "Adam", "adamax": "Adamax", "nadam": "Nadam"}
    for name, cls in classes.items():
        keras_default = inspect.signature(
            getattr(tf.keras.optimizers, cls)).parameters["learning_rate"].default
        cfg = load_config(conf, overrides=["training.learning_rate=default",
                                           f"training.optimizer={name}"])
        assert cfg.training.learning_rate == "default"
        assert cfg.training.rate == keras_default == KERAS_DEFAULT_RATES[name], name
    fixed = load_config(conf, overrides=["training.learning_rate=0.02"])
    assert fixed.training.rate == 0.02
    with pytest.raises(ConfigError, match="learning_rate"):
        load_config(conf, overrides=["training.learning_rate=fast"])
