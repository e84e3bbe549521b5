"""Driver side of ``model.builder``: check that it imports, and ship its code to the executors.

A builder that cannot be imported on the driver is a :class:`ConfigError` (exit 2) before any
training. Its module's top-level package (or the module file itself) goes to every executor
with ``SparkContext.addPyFile``, so a cluster imports it as the driver does, with no
``--py-files``. Modules installed in site-packages are left alone: the executors have them.
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile
import zipfile
from typing import Any

from .. import logs
from ..errors import ConfigError

log = logs.get("builder")

_SHIPPED: set[str] = set()  # per driver process: addPyFile refuses the same name twice


def check_and_ship(builder: Any, spark=None) -> None:
    """Import ``builder`` here (ConfigError if it cannot be) and ship its code via ``spark``."""
    if builder is None:
        return
    from ..executor.builder import builder_name, load_builder

    name = builder_name(builder)
    try:
        fn = load_builder(builder)
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        raise ConfigError(
            f"model.builder {name} cannot be imported ({type(exc).__name__}: "
            f"{lines[0][:200] if lines else ''}); give 'package.module:function' importable "
            "from the working directory or PYTHONPATH, e.g. "
            "'examples.builders:residual_mlp'") from None
    if spark is not None:
        _ship(getattr(fn, "__module__", None), spark)


def _ship(module_name: str | None, spark) -> None:
    module = sys.modules.get(module_name or "")
    path = getattr(module, "__file__", None)
    if module is None or not path or module_name == "__main__":
        return  # a function from a notebook or script travels by value (cloudpickle)
    top = module_name.split(".")[0]
    root = pathlib.Path(path).resolve()
    for _ in module_name.split(".")[1:]:
        root = root.parent
    if "site-packages" in root.parts or "dist-packages" in root.parts or top in _SHIPPED:
        return
    if root.is_file():  # a top-level module
        spark.sparkContext.addPyFile(str(root))
    else:  # a package: zipped, .py files only
        spark.sparkContext.addPyFile(_zip_package(root))
    _SHIPPED.add(top)
    log.info("model.builder: shipped %s (%s) to the executors", top, root)


def _zip_package(root: pathlib.Path) -> str:
    target = pathlib.Path(tempfile.mkdtemp(prefix="sparkdl-builder-")) / f"{root.name}.zip"
    with zipfile.ZipFile(target, "w") as zf:
        for dirpath, dirnames, files in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "__pycache__"))]
            for f in files:
                if f.endswith(".py"):
                    full = pathlib.Path(dirpath) / f
                    zf.write(full, str(full.relative_to(root.parent)))
    return str(target)
