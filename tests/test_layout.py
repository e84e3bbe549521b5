"""The folder boundaries hold: executor code never imports driver code, what crosses the
driver/executor line (``spec``) imports no TensorFlow, pyspark or mlflow, tracking and reporting
sit below the code that trains and searches, and no modules import each other in a circle —
read from the package's own import statements (at any depth, inside functions too)."""

from __future__ import annotations

import ast
import pathlib

import pytest

import sparkdl_tune

PACKAGE = pathlib.Path(sparkdl_tune.__file__).parent
# leaves both sides may import: they import nothing of the package's but each other
SHARED = {"sparkdl_tune", "sparkdl_tune.errors", "sparkdl_tune.logs", "sparkdl_tune.files",
          "sparkdl_tune.config", "sparkdl_tune.config.model_spec", "sparkdl_tune.keras_compat"}
HEAVY = {"tensorflow", "keras", "pyspark", "py4j", "mlflow", "horovod", "hyperopt", "optuna"}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    rel = pathlib.Path(*name.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def imports(path: pathlib.Path) -> set[str]:
    """Absolute names of every module ``path`` imports."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[:len(base) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if base.startswith("sparkdl_tune") and is_module(sub) else base)
    return found


def modules_under(folder: str) -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted((PACKAGE / folder).rglob("*.py"))}


def test_the_import_reader_sees_relative_and_nested_imports():
    got = imports(PACKAGE / "executor" / "worker.py")
    assert {"sparkdl_tune.spec.job", "sparkdl_tune.spec.outcome", "sparkdl_tune.logs",
            "sparkdl_tune.executor.stream", "tensorflow"} <= got, got


def test_executor_code_imports_no_driver_code():
    allowed = ("sparkdl_tune.executor", "sparkdl_tune.spec")
    wrong = {f"{mod} -> {imp}" for mod, imps in modules_under("executor").items()
             for imp in imps if imp.startswith("sparkdl_tune")
             and imp not in SHARED and not imp.startswith(allowed)}
    assert not wrong, sorted(wrong)


def test_the_spec_imports_nothing_heavy_and_no_other_package_code():
    wrong = {f"{mod} -> {imp}" for mod, imps in modules_under("spec").items() for imp in imps
             if imp.split(".")[0] in HEAVY
             or (imp.startswith("sparkdl_tune") and imp not in SHARED
                 and not imp.startswith("sparkdl_tune.spec"))}
    assert not wrong, sorted(wrong)


def test_the_shared_leaves_import_no_package_code_but_each_other():
    for name in SHARED - {"sparkdl_tune"}:
        rel = pathlib.Path(*name.split(".")[1:])
        path = PACKAGE / rel / "__init__.py" if (PACKAGE / rel).is_dir() else (
            PACKAGE / rel).with_suffix(".py")
        inner = {i for i in imports(path) if i.startswith("sparkdl_tune")}
        assert inner <= SHARED, (name, inner)


# each search library and the engine modules that alone may import it
SEARCH_LIBRARIES = {
    "hyperopt": {"sparkdl_tune.search.engines.hyperopt"},
    "optuna": {"sparkdl_tune.search.engines.optuna", "sparkdl_tune.search.engines.optuna_space"},
}


@pytest.mark.parametrize("library", sorted(SEARCH_LIBRARIES))
def test_only_its_engine_module_imports_a_search_library(library):
    """The rest of the search speaks in decoded points (a second engine is one new module);
    the scheduler package imports no engine and no heavy library at all."""
    every = modules_under(".")
    owners = SEARCH_LIBRARIES[library]
    wrong = {f"{mod} -> {imp}" for mod, imps in every.items() for imp in imps
             if imp.split(".")[0] == library and mod not in owners}
    assert not wrong, sorted(wrong)
    assert any(i.startswith(library) for owner in owners for i in every[owner])
    schedulers = {f"{mod} -> {imp}" for mod, imps in modules_under("search/schedulers").items()
                  for imp in imps if imp.split(".")[0] in HEAVY
                  or imp.startswith("sparkdl_tune.search.engines")}
    assert not schedulers, sorted(schedulers)


# hyperopt's trial documents: their keys and names, and importing hyperopt
HYPEROPT_WORDS = ('"misc"', '"tid"', '"idxs"', "JOB_STATE", "new_trial_docs", "miscs_",
                  "book_time", "spark_error", "import hyperopt", "from hyperopt")


def test_hyperopts_documents_live_in_its_engine_module_alone():
    """The monitor, the live runs, resume and the package's algorithms read plain attempts
    (``search/engines/protocol.py``): hyperopt's trial-document keys and names appear in
    ``search/engines/hyperopt.py`` only, so a second engine is one module."""
    engine = PACKAGE / "search" / "engines" / "hyperopt.py"
    wrong = {f"{path.relative_to(PACKAGE)}: {word}"
             for path in sorted(PACKAGE.rglob("*.py")) if path != engine
             for word in HYPEROPT_WORDS if word in path.read_text()}
    assert not wrong, sorted(wrong)
    assert all(word in engine.read_text() for word in HYPEROPT_WORDS)


def _importing(folder: str, forbidden: tuple[str, ...]) -> set[str]:
    return {f"{mod} -> {imp}" for mod, imps in modules_under(folder).items() for imp in imps
            if imp.startswith(forbidden)}


def test_tracking_imports_no_search_driver_or_executor_code():
    """Tracking is the store both sides write to: it takes records and models from its
    callers, so it loads no TensorFlow and no search logic."""
    wrong = _importing("tracking", ("sparkdl_tune.search", "sparkdl_tune.driver",
                                    "sparkdl_tune.executor"))
    assert not wrong, sorted(wrong)


def test_reporting_imports_no_driver_or_executor_code():
    wrong = _importing("reporting", ("sparkdl_tune.driver", "sparkdl_tune.executor"))
    assert not wrong, sorted(wrong)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_only_the_horovod_modules_import_horovod():
    """Horovod is one engine: its backend and its launcher, nothing else (the others run
    where Horovod does not install)."""
    own = {"sparkdl_tune.executor.backends.horovod", "sparkdl_tune.driver.launch.horovod"}
    every = modules_under(".")
    wrong = {f"{mod} -> {imp}" for mod, imps in every.items() for imp in imps
             if imp.split(".")[0] == "horovod" and mod not in own}
    assert not wrong, sorted(wrong)
    assert all(any(i.startswith("horovod") for i in every[mod]) for mod in own)


def test_no_modules_import_each_other_in_a_circle():
    """Package faces (``__init__.py``) count as the modules they are: ``from . import x``
    inside a package is an import of the package's module ``x``, not of the package."""
    every = modules_under(".")
    graph = {mod: {imp for imp in imps if imp in every and imp != mod and imp != "sparkdl_tune"}
             for mod, imps in every.items()}
    assert not circles(graph), circles(graph)


def test_only_the_petastorm_reader_imports_petastorm():
    """The driver materialises with Spark and hands executors plain file lists
    (:class:`~sparkdl_tune.spec.data.SplitFiles`), so a platform without Petastorm only loses
    that reader."""
    every = modules_under(".")
    wrong = {f"{mod} -> {imp}" for mod, imps in every.items() for imp in imps
             if imp.split(".")[0] == "petastorm"
             and mod != "sparkdl_tune.executor.readers.petastorm"}
    assert not wrong, sorted(wrong)
    assert any(i.startswith("petastorm") for i in every["sparkdl_tune.executor.readers.petastorm"])
