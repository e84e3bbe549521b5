"""The engine registry is the one list of ``execution.backend`` names: each entry resolves to
a backend class implementing the interface and a launcher function, and the config loader
accepts exactly its names (a new engine is its module plus one registry line)."""

from __future__ import annotations

import inspect

import pytest

from sparkdl_tune.config.loader import load_config
from sparkdl_tune.errors import ConfigError
from sparkdl_tune.executor.backends.single import Backend
from sparkdl_tune.spec import engines

INTERFACE = [name for name, _ in inspect.getmembers(Backend, inspect.isfunction)]


@pytest.mark.parametrize("name", [*engines.ENGINES, "single"])
def test_each_registry_entry_resolves_and_implements_the_interface(name):
    engine = engines.SINGLE if name == "single" else engines.ENGINES[name]
    cls = engines.resolve(engine.backend)
    assert issubclass(cls, Backend) and (cls is Backend) == (name == "single")
    assert cls.name == name
    for method in INTERFACE:  # every method callable with the interface's own signature
        assert inspect.signature(getattr(cls, method)).parameters.keys() == \
            inspect.signature(getattr(Backend, method)).parameters.keys(), (name, method)
    launcher = engines.resolve(engine.launcher)
    assert list(inspect.signature(launcher).parameters) == ["spark", "job", "start_timeout"]


def test_the_config_takes_exactly_the_registry_names(monkeypatch):
    for name in engines.ENGINES:
        assert load_config(None, overrides=[f"execution.backend={name}"]
                           ).execution.backend == name
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides=["execution.backend=tf_distributed"])
    line = str(err.value)
    assert "\n" not in line and "'execution.backend' is 'tf_distributed'" in line
    assert "not one of: " + ", ".join(engines.ENGINES) in line
    assert "did you mean 'tf_distribute'?" in line


NEW_ENGINE = """
from sparkdl_tune.spec import engines
engines.ENGINES["gloo_test"] = engines.Engine(  # the one registry line
    "sparkdl_tune.executor.backends.single:Backend", "sparkdl_tune.driver.launch.local:train")
from sparkdl_tune.config.loader import load_config
from sparkdl_tune.driver.launch import train
from sparkdl_tune.executor.backends import make_backend
from sparkdl_tune.spec.engines import engine, resolve
from sparkdl_tune.spec.job import TrainJob

cfg = load_config(None, overrides=["execution.backend=gloo_test", "execution.num_proc=2"])
job = TrainJob(model=cfg.model, training=cfg.training, data=None, num_proc=2,
               backend=cfg.execution.backend)
print(cfg.execution.backend, type(make_backend(job)).__name__,
      resolve(engine(job.backend, 2).launcher).__module__)
"""


def test_a_new_engine_is_its_module_plus_one_registry_line():
    """One more registry entry (in a fresh interpreter: the config reads the registry when
    it is imported): the config accepts the name and a job of it gets its backend and
    launcher (the one-process ones stand in for a new module)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", NEW_ENGINE], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["gloo_test", "Backend", "sparkdl_tune.driver.launch.local"]
