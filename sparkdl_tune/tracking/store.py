"""MLflow tracking: the store, parent/child runs, params, per-epoch metrics, tags, study files.

mlflow is imported inside the functions, so ``import sparkdl_tune`` stays fast. The logged
Keras model is :mod:`sparkdl_tune.tracking.model`'s, evaluation artifacts are
:mod:`sparkdl_tune.tracking.results`', tag names and the run layout :mod:`.layout`'s. On the
driver::

    tracking.setup(cfg.mlflow)
    with tracking.start_run(cfg.mlflow, "search") as parent:
        with tracking.start_run(cfg.mlflow, "trial-0", parent_run_id=parent.info.run_id):
            tracking.log_metrics(result.history)

With no URI in the config or ``MLFLOW_TRACKING_URI``, runs go to ``./mlflow.db`` (SQLite, no
server; ``mlflow ui`` there shows them). MLflow 3 refuses a ``./mlruns`` file store unless
``MLFLOW_ALLOW_FILE_STORE=true``; one configured explicitly is allowed. Credentials in a URI
(``https://user:token@host``) are redacted in logs, params and tags. An http(s) server is
asked once in :func:`setup` (:func:`sparkdl_tune.tracking.uri.check_reachable`), so a wrong
address fails in seconds.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Optional

from .. import logs
from ..config.schema import MlflowSettings
from .layout import TAG_FAILURE
from .uri import (  # noqa: F401 (the store's API)
    artifact_location,
    check_reachable,
    credentials_to_env,
    redact,
    tracking_uri,
)

# MLflow's limits (mlflow.utils.validation): value lengths, key length, entities per batch.
_MAX_PARAM_VALUE, _MAX_TAG_VALUE, _MAX_KEY = 6000, 8000, 250
_PARAMS_PER_BATCH, _METRICS_PER_BATCH = 100, 1000
_BAD_KEY_CHARS = re.compile(r"[^\w.\- /]")  # MLflow also allows ':' but not on Windows

log = logs.get("tracking")


def setup(settings: MlflowSettings) -> str:
    """Point MLflow at the store and experiment (created if missing); logs and returns the URI.

    Returns:
        The tracking URI with any credentials redacted.
    """
    from .outage import bound_mlflow_retries

    bound_mlflow_retries()  # retries here, then trial records kept locally (tracking.journal)
    redacted = redact(tracking_uri(settings))
    check_reachable(settings)
    prepare(settings)
    log.info("MLflow: %s, experiment '%s'", redacted, settings.experiment)
    return redacted


@contextlib.contextmanager
def start_run(settings: MlflowSettings, run_name: str, parent_run_id: Optional[str] = None,
              tags: Optional[Mapping[str, Any]] = None,
              resume_run_id: Optional[str] = None) -> Iterator[Any]:
    """Start a run in ``settings.experiment``, nested under ``parent_run_id`` when given.

    The parent may be the active run (a search in this process) or any earlier run (a
    resumed search). The run ends FINISHED, or FAILED if the block raises; after
    :func:`log_failure` it stays FAILED.

    Yields:
        The ``mlflow.ActiveRun``; ``run.info.run_id`` names it.
    """
    import mlflow

    experiment_id = prepare(settings)
    tag_values = {_key(k): redact(str(v)) for k, v in (tags or {}).items()}
    if resume_run_id:  # a resumed search: reopen its run rather than start another
        run = mlflow.start_run(run_id=resume_run_id, tags=tag_values)
    else:
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name,
                               nested=parent_run_id is not None, parent_run_id=parent_run_id,
                               tags=tag_values)
    status = "FINISHED"
    try:
        yield run
    except BaseException:
        status = "FAILED"
        raise
    finally:
        active = mlflow.active_run()
        if active is not None and active.info.run_id == run.info.run_id:
            try:
                mlflow.end_run(status)
            except Exception as exc:
                if status == "FINISHED":
                    raise
                # the block's own error says more (e.g. the tracking server went away)
                from .outage import is_outage

                log.warning("MLflow: could not mark run %s %s (%s)", run.info.run_id, status,
                            "the tracking server is unreachable" if is_outage(exc) else
                            str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)


def log_params(params: Mapping[str, Any], run_id: Optional[str] = None) -> None:
    """Log params into the active run (or ``run_id``), in batches of MLflow's maximum size.

    Nested mappings become dotted keys (flatten a config with ``config.as_flat_dict``); values
    are stringified with credentials redacted and truncated to MLflow's limit; keys sanitised.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Param

    run_id = run_id or active_run_id()
    items = [Param(k, _text(v, _MAX_PARAM_VALUE)) for k, v in _flatten(params).items()]
    client = MlflowClient()
    for i in range(0, len(items), _PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[i:i + _PARAMS_PER_BATCH], synchronous=True)


def log_metrics(history: Mapping[str, Sequence[float]],
                summary: Optional[Mapping[str, float]] = None,
                run_id: Optional[str] = None) -> int:
    """Per-epoch ``history`` (step = epoch index) and ``summary`` at the last epoch's step.

    Returns:
        The last step, so a model logged afterwards can be attached to it.
    """
    run_id = run_id or active_run_id()
    last = max((len(v) for v in history.values()), default=1) - 1
    log_steps(run_id, {k: (0, list(v)) for k, v in history.items() if len(v)})
    log_steps(run_id, {k: (last, [v]) for k, v in (summary or {}).items()})
    return last


def set_tags(tags: Mapping[str, Any], run_id: Optional[str] = None) -> None:
    """Set tags on the active run (or ``run_id``), values redacted and truncated."""
    from mlflow import MlflowClient

    run_id = run_id or active_run_id()
    client = MlflowClient()
    for k, v in tags.items():
        client.set_tag(run_id, _key(k), _text(v, _MAX_TAG_VALUE))


def open_child_run(settings: MlflowSettings, run_name: str, parent_run_id: str,
                   tags: Mapping[str, Any]) -> str:
    """A RUNNING child run (explicit run id, no active-run state: safe from any thread)."""
    from mlflow import MlflowClient

    experiment_id = prepare(settings)
    all_tags = {"mlflow.parentRunId": parent_run_id, **tags}
    run = MlflowClient().create_run(
        experiment_id, run_name=run_name,
        tags={_key(k): _text(v, _MAX_TAG_VALUE) for k, v in all_tags.items()})
    return run.info.run_id


def log_steps(run_id: str, series: Mapping[str, tuple[int, Sequence[float]]]) -> None:
    """``metric -> (first step, values)``: values at consecutive steps from the first."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(_key(k), float(v), now, first + i)
               for k, (first, values) in series.items() for i, v in enumerate(values)]
    client = MlflowClient()
    for i in range(0, len(metrics), _METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[i:i + _METRICS_PER_BATCH], synchronous=True)


def record_run(settings: MlflowSettings, run_name: str, parent_run_id: str,
               params: Mapping[str, Any], history: Mapping[str, Sequence[float]],
               summary: Mapping[str, float], tags: Mapping[str, Any],
               failure: Optional[str] = None, status: Optional[str] = None,
               run_id: Optional[str] = None, logged: Mapping[str, int] = {}) -> str:
    """Write one finished child run (a trial), FINISHED or FAILED with its reason — in one go,
    or into ``run_id`` opened while it ran, whose first ``logged[metric]`` epochs are there.

    Uses explicit run ids only (no active-run state), so a monitor thread can call it while a
    search runs.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    all_tags = {"mlflow.parentRunId": parent_run_id, "mlflow.runName": run_name, **tags}
    if failure:
        all_tags[TAG_FAILURE] = failure
    if run_id is None:
        run_id = open_child_run(settings, run_name, parent_run_id, all_tags)
        log_params(params, run_id)
    else:
        set_tags(all_tags, run_id)
    rest = {k: (logged.get(k, 0), list(v)[logged.get(k, 0):]) for k, v in history.items()}
    log_steps(run_id, {k: v for k, v in rest.items() if v[1]})
    last = max((len(v) for v in history.values()), default=1) - 1
    log_steps(run_id, {k: (last, [v]) for k, v in (summary or {}).items()})
    client.set_terminated(run_id, status or ("FAILED" if failure else "FINISHED"))
    return run_id


STUDY_FILE = "study.json"  # a search's design record on its parent run (see search.study)


def log_study(study: Mapping[str, Any], run_id: str) -> None:
    """Write ``study`` as the ``study.json`` artifact of the search's parent run."""
    import mlflow

    with muted():
        mlflow.MlflowClient().log_dict(run_id, dict(study), STUDY_FILE)


def read_study(run_id: str) -> dict[str, Any]:
    """The ``study.json`` of a parent run; ``{}`` when it has none."""
    import json

    import mlflow

    try:
        with muted():
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=STUDY_FILE)
        with open(path) as f:
            return json.load(f)
    except Exception:  # none written (an older search, or no design to describe)
        return {}


def delete_run(run_id: str) -> None:
    """Mark a run deleted (MLflow keeps it in its trash; searches no longer see it)."""
    from mlflow import MlflowClient

    MlflowClient().delete_run(run_id)


def find_runs(settings: MlflowSettings, tags: Mapping[str, str],
              parent_run_id: Optional[str] = None) -> list:
    """Runs of ``settings.experiment`` carrying all ``tags`` (and the parent, if given),
    newest first. Used to find a search by name and its trials when resuming."""
    import mlflow

    experiment_id = prepare(settings)
    clauses = [f"tags.`{_key(k)}` = '{v}'" for k, v in tags.items()]
    if parent_run_id:
        clauses.append(f"tags.`mlflow.parentRunId` = '{parent_run_id}'")
    return mlflow.search_runs([experiment_id], filter_string=" and ".join(clauses),
                              order_by=["attributes.start_time DESC"], output_format="list",
                              max_results=50_000)


def log_failure(reason: str, run_id: Optional[str] = None) -> None:
    """Mark the active run (or ``run_id``) FAILED with a ``failure_reason`` tag, and end it.

    Ending it pops it off MLflow's run stack, so a parent (search) run becomes active again.
    """
    import mlflow
    from mlflow import MlflowClient

    active = mlflow.active_run()
    run_id = run_id or active_run_id()
    MlflowClient().set_tag(run_id, TAG_FAILURE, _text(reason, _MAX_TAG_VALUE))
    if active is not None and active.info.run_id == run_id:
        mlflow.end_run("FAILED")
    else:
        MlflowClient().set_terminated(run_id, "FAILED")


def prepare(settings: MlflowSettings) -> str:
    """Set the tracking URI and experiment quietly; return the experiment id."""
    import mlflow
    from mlflow.exceptions import MlflowException

    _quiet_mlflow()
    uri = tracking_uri(settings)
    if "://" not in uri or uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the user chose it; honour it
    mlflow.set_tracking_uri(credentials_to_env(uri))  # no secret in what MLflow prints
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is None:
        try:
            return client.create_experiment(settings.experiment,
                                            artifact_location=artifact_location(uri, settings))
        except MlflowException:  # created meanwhile by another process?
            experiment = client.get_experiment_by_name(settings.experiment)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        from ..errors import ConfigError

        raise ConfigError(
            f"mlflow.experiment '{settings.experiment}' is deleted in {redact(uri)}; restore it "
            f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) or pick "
            "another name")
    mlflow.set_experiment(experiment_id=experiment.experiment_id)
    return experiment.experiment_id


def _quiet_mlflow() -> None:
    """Hide schema-migration INFO lines and SQLAlchemy deprecations a user cannot act on."""
    logs.quiet_libraries()
    # a progress bar per artifact read (the report's study.json): nothing to act on
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # "View run <name> at: <url>" for every trial run that ends (the report links the runs)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"sqlalchemy(\.|$)")
    warnings.filterwarnings("ignore", message=r".*noload.*loader strategy.*")


@contextlib.contextmanager
def muted() -> Iterator[None]:
    """Hide Keras progress bars and not-compiled warnings while MLflow saves or loads a model."""
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        tf_log.setLevel(level)


def active_run_id() -> str:
    import mlflow

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("no active MLflow run: call inside tracking.start_run() or pass run_id")
    return run.info.run_id


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[_key(f"{prefix}{k}")] = v
    return out


def _key(key: Any) -> str:
    """A key MLflow accepts: allowed characters only, no empty/``.``/``..`` path parts."""
    parts = _BAD_KEY_CHARS.sub("_", str(key)).split("/")
    clean = "/".join(p for p in parts if p not in ("", ".", ".."))
    return (clean or "_")[:_MAX_KEY]


def _text(value: Any, limit: int) -> str:
    if callable(value):  # model.builder from Python: what identifies it, not its address
        from ..config.model_spec import builder_identity

        value = builder_identity(value)
    text = redact(str(value))
    return text if len(text) <= limit else text[:limit - 3] + "..."
