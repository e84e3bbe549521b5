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
    assert "not one of: " + ", ".join(["auto", *engines.ENGINES]) in line
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


def test_auto_picks_the_profiles_engine_and_reader():
    """``auto`` is the first registry entry whose library is installed: Horovod and
    Petastorm where they are (profile classic), else tf_distribute and Arrow (current)."""
    cfg = load_config(None)
    want_backend = "horovod" if engines.installed("horovod") else "tf_distribute"
    want_reader = "petastorm" if engines.installed("petastorm") else "arrow"
    assert (cfg.execution.backend, cfg.data.reader) == (want_backend, want_reader)


MISSING_ENGINE = """
from sparkdl_tune.spec import engines
engines.ENGINES = {"absent": engines.Engine(  # an engine whose library is not installed, first
    "sparkdl_tune.executor.backends.single:Backend", "sparkdl_tune.driver.launch.local:train",
    library="sparkdl_tune_no_such_library"), **engines.ENGINES}
from sparkdl_tune.cli import main
import sys
from sparkdl_tune.config.loader import load_config
print(load_config(None).execution.backend)
sys.exit(main(["train", sys.argv[1], "execution.backend=absent", "execution.num_proc=2"]))
"""


def test_an_engine_that_is_not_installed_is_skipped_by_auto_and_refused_by_name(tmp_path):
    """Named explicitly on a platform without its library, an engine ends the command with
    one line and exit 2 before Spark starts; ``auto`` passes over it."""
    import subprocess
    import sys

    job = tmp_path / "job.yaml"
    job.write_text(f"data:\n  path: {tmp_path / 'data'}\n")
    out = subprocess.run([sys.executable, "-c", MISSING_ENGINE, str(job)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stdout.split()[0] in engines.ENGINES  # auto: not the absent one
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert "execution.backend is 'absent' but sparkdl_tune_no_such_library is not installed" \
        in lines[0] and "execution.backend=auto" in lines[0]
    assert not (tmp_path / "spark-warehouse").exists() and not (tmp_path / "mlflow.db").exists()


def test_an_installed_library_beside_a_version_it_does_not_work_with_is_passed_over():
    """Petastorm installed beside pyarrow >= 15 (or Horovod beside TensorFlow >= 2.19) is
    found by the import system but does not work: ``auto`` passes over it and naming it says
    which version clashes. Checked on this environment's real pyarrow."""
    import importlib.metadata

    from sparkdl_tune.spec import readers

    pyarrow = importlib.metadata.version("pyarrow")
    broken = readers.Reader("sparkdl_tune.executor.readers.arrow:ArrowReader", "numpy",
                            needs=(f"pyarrow<{pyarrow}",))
    fine = readers.Reader("sparkdl_tune.executor.readers.arrow:ArrowReader", "numpy",
                          needs=(f"pyarrow>={pyarrow}",))
    assert engines.unusable(fine) is None
    assert engines.unusable(broken) == (f"numpy is installed but needs pyarrow<{pyarrow} and "
                                        f"this environment has pyarrow {pyarrow}")
    assert engines.first_installed({"broken": broken, "fine": fine}, "data.reader") == "fine"
    # the shipped rules: Petastorm with pyarrow < 15 only, Horovod with TensorFlow < 2.19
    assert readers.READERS["petastorm"].needs == ("pyarrow<15",)
    assert engines.ENGINES["horovod"].needs == ("tensorflow<2.19",)
    if int(pyarrow.split(".")[0]) >= 15:  # the current profile: auto reads with Arrow
        assert engines.first_installed(readers.READERS, "data.reader") == "arrow"
