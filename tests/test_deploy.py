"""deploy/: the Databricks job and the Airflow DAG call our jobs with options that exist.

Each task's entry point (``jobs/<command>.py``) and arguments are parsed the way the CLI parses
them (``build_parser().parse_known_args`` plus ``main``'s rule that leftovers are ``key=value``
overrides), and the config they name is loaded with those overrides, so a mistyped option or
config key fails here rather than in a scheduled run. The DAG is read with ``ast``: Airflow is
not needed.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import io
import json
import pathlib
import re
from dataclasses import dataclass

import pytest

from sparkdl_tune.cli import build_parser
from sparkdl_tune.config.loader import load_config
from sparkdl_tune.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[1]
JOB_JSON = ROOT / "deploy" / "databricks_job.json"
DAG_FILE = ROOT / "deploy" / "airflow_dag.py"
PIPELINE = ("prepare", "tune", "report")


class InvalidTask(Exception):
    """A deployed task would fail at argument parsing or config loading."""


@dataclass
class Task:
    name: str
    application: str  # the python file run by spark-submit / spark_python_task
    args: list[str]
    upstream: list[str]

    @property
    def command(self) -> str:
        match = re.search(r"(?:^|/)jobs/(\w+)\.py$", self.application)
        if not match:
            raise InvalidTask(f"task {self.name}: {self.application} is not a jobs/*.py entry "
                              "point")
        return match.group(1)


# ---- the validator ---------------------------------------------------------------------------

def cli_commands() -> set[str]:
    parser = build_parser()
    return {name for action in parser._actions
            if isinstance(action, argparse._SubParsersAction) for name in action.choices}


def in_checkout(path: str) -> str:
    """A deployed path inside the repository's conf/ -> the same path in this checkout."""
    match = re.search(r"(?:^|/)(conf(?:/.*)?)$", path)
    if not match:
        raise InvalidTask(f"{path} is not under the repository's conf/; cannot check it")
    return str(ROOT / match.group(1))


def check_task(task: Task) -> argparse.Namespace:
    """Parse ``task``'s arguments as its job would, then load the config it names."""
    command = task.command
    if not (ROOT / "jobs" / f"{command}.py").is_file():
        raise InvalidTask(f"task {task.name}: jobs/{command}.py does not exist")
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args, extra = build_parser().parse_known_args([command, *task.args])
    except SystemExit:
        raise InvalidTask(f"task {task.name}: {stderr.getvalue().strip()}") from None
    # the rule of sparkdl_tune.cli.main: whatever argparse left must be key=value overrides
    stray = [a for a in extra if "=" not in a or a.startswith("-")]
    if stray:
        raise InvalidTask(f"task {task.name}: unrecognized arguments: {' '.join(stray)}")
    overrides = [*getattr(args, "overrides", []), *extra]
    files = [in_checkout(args.config)] if getattr(args, "config", None) else []
    try:
        load_config(conf_dir=in_checkout(args.conf_dir), env=args.env, files=files,
                    overrides=overrides)
    except ConfigError as exc:
        raise InvalidTask(f"task {task.name}: {exc}") from None
    return args


def check_pipeline(tasks: list[Task]) -> None:
    """One task per pipeline stage, each depending on exactly the stage before it."""
    by_name = {t.name: t for t in tasks}
    commands = [t.command for t in tasks]
    if sorted(commands) != sorted(PIPELINE):
        raise InvalidTask(f"tasks run {commands}; expected one each of {list(PIPELINE)}")
    for task in tasks:
        want = PIPELINE[PIPELINE.index(task.command) - 1:PIPELINE.index(task.command)]
        got = tuple(by_name[u].command for u in task.upstream)
        if got != want:
            raise InvalidTask(f"task {task.name} ({task.command}) runs after {list(got)}; "
                              f"expected {list(want)}")


def skip_unless_cli_has(task: Task) -> None:
    if task.command not in cli_commands() or not (ROOT / "jobs" / f"{task.command}.py").exists():
        pytest.skip(f"sparkdl-tune {task.command} (and jobs/{task.command}.py) not there yet")


# ---- Databricks ------------------------------------------------------------------------------

def databricks_tasks(job: dict) -> list[Task]:
    return [Task(name=t["task_key"], application=t["spark_python_task"]["python_file"],
                 args=list(t["spark_python_task"].get("parameters", [])),
                 upstream=[d["task_key"] for d in t.get("depends_on", [])])
            for t in job["tasks"]]


@pytest.fixture(scope="module")
def job() -> dict:
    return json.loads(JOB_JSON.read_text())


def test_databricks_job_has_a_cluster_and_the_wheel_for_every_task(job):
    clusters = {c["job_cluster_key"]: c["new_cluster"] for c in job["job_clusters"]}
    for cluster in clusters.values():
        assert {"spark_version", "node_type_id", "num_workers", "spark_conf"} <= set(cluster)
        assert cluster["num_workers"] >= 1
    for task in job["tasks"]:
        assert task["job_cluster_key"] in clusters
        wheels = [lib["whl"] for lib in task["libraries"]]
        assert len(wheels) == 1 and re.fullmatch(r"dbfs:/.+/sparkdl_tune-[\w.]+-py3-none-any\.whl",
                                                 wheels[0])
        python_file = task["spark_python_task"]["python_file"]
        # workspace files need an absolute path (relative ones only with a git_source)
        assert python_file.startswith("/") or "git_source" in job


def test_databricks_tasks_run_prepare_then_tune_then_report(job):
    check_pipeline(databricks_tasks(job))


@pytest.mark.parametrize("stage", PIPELINE)
def test_databricks_task_arguments_are_real_cli_options(job, stage):
    task = next(t for t in databricks_tasks(job) if t.command == stage)
    skip_unless_cli_has(task)
    args = check_task(task)
    assert args.command == stage


def test_databricks_tune_and_report_share_one_search(job):
    tasks = {t.command: t for t in databricks_tasks(job)}
    search = next(a.split("=", 1)[1] for a in tasks["tune"].args if a.startswith("search.name="))
    assert search in tasks["report"].args


@pytest.mark.parametrize("edit,message", [
    (lambda job: _args(job, "prepare").__setitem__(3, "--ouput"), "required: --out"),
    (lambda job: _args(job, "prepare").__setitem__(0, "fashion_mnist"), "invalid choice"),
    (lambda job: _args(job, "prepare").append("--seeds=3"), "unrecognized arguments: --seeds"),
    (lambda job: _args(job, "tune").append("search.max_trial=4"), "search.max_trial"),
    (lambda job: _args(job, "tune").append("--max-trials=4"), "unrecognized arguments"),
    (lambda job: _args(job, "tune").append("extra.yaml"), "unrecognized arguments: extra.yaml"),
])
def test_a_mistyped_option_in_a_copy_of_the_job_is_caught(job, tmp_path, edit, message):
    broken = copy.deepcopy(job)
    edit(broken)
    path = tmp_path / "job.json"
    path.write_text(json.dumps(broken))
    tasks = [t for t in databricks_tasks(json.loads(path.read_text()))
             if t.command in ("prepare", "tune")]
    with pytest.raises(InvalidTask, match=message):
        for task in tasks:
            check_task(task)


def test_a_broken_dependency_in_the_job_is_caught(job):
    broken = copy.deepcopy(job)
    next(t for t in broken["tasks"] if t["task_key"] == "report")["depends_on"] = \
        [{"task_key": "prepare"}]
    with pytest.raises(InvalidTask, match=r"report \(report\) runs after \['prepare'\]"):
        check_pipeline(databricks_tasks(broken))


def _args(job: dict, task_key: str) -> list[str]:
    return next(t for t in job["tasks"] if t["task_key"] == task_key)["spark_python_task"][
        "parameters"]


# ---- Airflow, read with ast ------------------------------------------------------------------

def static(node: ast.AST, names: dict):
    """The value of a literal, a module-level name, an f-string of those, a list or a dict."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.JoinedStr):
        return "".join(static(v.value, names) if isinstance(v, ast.FormattedValue)
                       else static(v, names) for v in node.values)
    if isinstance(node, (ast.List, ast.Tuple)):
        out = []
        for element in node.elts:
            if isinstance(element, ast.Starred):
                out.extend(static(element.value, names))
            else:
                out.append(static(element, names))
        return out
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {static(k, names): static(v, names) for k, v in zip(node.keys, node.values)}
    raise InvalidTask(f"line {node.lineno}: cannot read {ast.unparse(node)!r} without running "
                      "the DAG; use literals, f-strings and module-level names")


def dag_tasks(source: str) -> list[Task]:
    tree = ast.parse(source)
    assigns = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Assign)),
                     key=lambda n: n.lineno)
    names, operators = {}, {}
    for node in assigns:
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            continue
        target, value = node.targets[0].id, node.value
        if isinstance(value, ast.Call) and getattr(value.func, "id", None) == \
                "SparkSubmitOperator":
            keywords = {k.arg: k.value for k in value.keywords if k.arg}
            operators[target] = Task(name=static(keywords["task_id"], names),
                                     application=static(keywords["application"], names),
                                     args=static(keywords.get("application_args",
                                                              ast.List(elts=[])), names),
                                     upstream=[])
            continue
        with contextlib.suppress(InvalidTask):
            names[target] = static(value, names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.BinOp):
            groups = _chain(node.value)
            for before, after in zip(groups, groups[1:]):
                for name in after:
                    operators[name].upstream += [operators[b].name for b in before]
    return list(operators.values())


def _chain(node: ast.AST) -> list[list[str]]:
    """``a >> [b, c] >> d`` -> ``[["a"], ["b", "c"], ["d"]]``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift):
        return _chain(node.left) + _chain(node.right)
    if isinstance(node, ast.Name):
        return [[node.id]]
    if isinstance(node, ast.List) and all(isinstance(e, ast.Name) for e in node.elts):
        return [[e.id for e in node.elts]]
    raise InvalidTask(f"line {node.lineno}: unsupported dependency {ast.unparse(node)!r}")


@pytest.fixture(scope="module")
def dag_source() -> str:
    return DAG_FILE.read_text()


def test_airflow_dag_uses_spark_submit_and_leaves_our_package_to_the_driver(dag_source):
    tree = ast.parse(dag_source)
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "airflow.providers.apache.spark.operators.spark_submit" in imported
    assert not any((m or "").startswith("sparkdl_tune") for m in imported)


def test_airflow_dag_runs_prepare_then_tune_then_report(dag_source):
    tasks = dag_tasks(dag_source)
    assert [t.name for t in tasks] == list(PIPELINE)
    check_pipeline(tasks)


@pytest.mark.parametrize("stage", PIPELINE)
def test_airflow_task_arguments_are_real_cli_options(dag_source, stage):
    task = next(t for t in dag_tasks(dag_source) if t.command == stage)
    skip_unless_cli_has(task)
    args = check_task(task)
    assert args.command == stage
    assert args.conf_dir == "/opt/sparkdl_tune/conf"


def test_airflow_tune_and_report_share_one_templated_search(dag_source):
    tasks = {t.command: t for t in dag_tasks(dag_source)}
    assert "search.name=fashion-mlp-{{ ds_nodash }}" in tasks["tune"].args
    assert tasks["report"].args[0] == "fashion-mlp-{{ ds_nodash }}"


@pytest.mark.parametrize("old,new,message", [
    ('"search.max_trials=24"', '"search.max_trails=24"', "max_trails"),
    ('"--overwrite"', '"--overwrite-it"', "unrecognized arguments"),
    ("prepare >> tune >> report", "prepare >> report\n    prepare >> tune",
     r"runs after \['prepare'\]"),
    ('"--out", DATASET', '"--out", os.path.join(DATA, "x")', "cannot read"),
])
def test_a_mistake_in_a_copy_of_the_dag_is_caught(dag_source, old, new, message):
    assert old in dag_source
    broken = dag_source.replace(old, new)
    with pytest.raises(InvalidTask, match=message):
        tasks = dag_tasks(broken)
        check_pipeline(tasks)
        for task in tasks:
            if task.command != "report":
                check_task(task)
