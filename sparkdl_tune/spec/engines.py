"""The distributed-training engines, by name: ``execution.backend`` picks one.

An engine is two halves that meet at :class:`~sparkdl_tune.spec.job.TrainJob`: the driver's
launcher (how the ranks are started as Spark tasks) and the executor's backend (how one rank
joins the others: scope, optimizer wrapping, metric averaging, agreement, failure wording).
Both are named here as ``"module:attribute"`` strings, so this registry imports nothing: the
config loader reads the valid names from it, and a new engine is its backend module plus one
line here (its launcher may be an existing one: ``barrier`` starts any backend that takes its
peers from the environment). A one-rank training (``num_proc: 1``) always runs in-process on
the ``single`` backend, whatever the engine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Engine:
    backend: str   # "module:Class", a subclass of sparkdl_tune.executor.backends.single.Backend
    launcher: str  # "module:function", called as launcher(spark, job, start_timeout)
    library: str = "tensorflow"  # the package it needs beyond the profile's own set
    needs: tuple[str, ...] = ()  # what its library works with, e.g. "tensorflow<2.19"


SINGLE = Engine("sparkdl_tune.executor.backends.single:Backend",
                "sparkdl_tune.driver.launch.local:train")

# in order of preference: ``execution.backend: auto`` is the first whose library is installed
# (Horovod on the classic profile, tf_distribute on the current one, where Horovod does not build)
ENGINES: dict[str, Engine] = {
    "horovod": Engine("sparkdl_tune.executor.backends.horovod:HorovodBackend",
                      "sparkdl_tune.driver.launch.horovod:train", library="horovod",
                      needs=("tensorflow<2.19",)),
    "tf_distribute": Engine("sparkdl_tune.executor.backends.tf_distribute:TFDistributeBackend",
                            "sparkdl_tune.driver.launch.barrier:train"),
}


def engine(name: str, num_proc: int = 2) -> Engine:
    """The engine of ``execution.backend: name`` (``SINGLE`` for one rank)."""
    return SINGLE if num_proc <= 1 else ENGINES[name]


def installed(library: str) -> bool:
    """Whether ``library`` can be imported here (looked up, not imported: cheap)."""
    import importlib.util

    try:
        return importlib.util.find_spec(library) is not None
    except (ImportError, ValueError):
        return False


#: distributions that install a package under another name (TensorFlow's CPU and GPU builds)
_DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu",
                                 "tensorflow-intel", "tensorflow-macos")}


def unusable(entry) -> str | None:
    """Why a registry entry (an engine or a reader) cannot work here, or None when it can: its
    library is not installed, or is installed beside a version of another package it does not
    work with (Petastorm does not import with pyarrow >= 15; Horovod does not build for
    TensorFlow >= 2.19), looked up from the installed metadata, not imported."""
    if not installed(entry.library):
        return f"{entry.library} is not installed in this environment"
    for need in getattr(entry, "needs", ()):
        clash = _clash(need)
        if clash:
            return f"{entry.library} is installed but needs {need} and this environment has {clash}"
    return None


def _clash(need: str) -> str | None:
    """``"name version"`` of the installed package that ``need`` (a requirement) excludes."""
    from importlib import metadata

    try:
        from packaging.requirements import Requirement
    except ImportError:  # nothing to compare with: trust the install
        return None
    req = Requirement(need)
    for dist in _DISTRIBUTIONS.get(req.name, (req.name,)):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        return None if req.specifier.contains(version, prereleases=True) else f"{dist} {version}"
    return None


def first_installed(registry: dict, setting: str) -> str:
    """The first name of ``registry`` that can work here: what ``auto`` means."""
    for name, entry in registry.items():
        if unusable(entry) is None:
            return name
    raise ValueError(f"{setting}: none of {', '.join(registry)} works here; install "
                     f"one of {', '.join(e.library for e in registry.values())}")


def resolve(ref: str):
    """The object a ``"module:attribute"`` string names (imported now, on this side)."""
    import importlib

    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)
