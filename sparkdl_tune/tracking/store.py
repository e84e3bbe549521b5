"""MLflow tracking: the store, parent/child runs, params, per-epoch metrics, models, registry.

The only module that imports mlflow (inside the functions, so ``import sparkdl_tune`` stays
fast). On the driver::

    tracking.setup(cfg.mlflow)
    with tracking.start_run(cfg.mlflow, "search") as parent:
        with tracking.start_run(cfg.mlflow, "trial-0", parent_run_id=parent.info.run_id):
            tracking.log_training(result, as_flat_dict(cfg))

With no URI in the config or ``MLFLOW_TRACKING_URI``, runs go to ``./mlflow.db`` (SQLite, no
server; ``mlflow ui`` there shows them). MLflow 3 refuses a ``./mlruns`` file store unless
``MLFLOW_ALLOW_FILE_STORE=true``; one configured explicitly is allowed. Credentials in a URI
(``https://user:token@host``) are redacted in logs, params and tags. An http(s) server is
asked once in :func:`setup` (:func:`check_reachable`), so a wrong address fails in seconds.
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
from pathlib import Path
from typing import Any, Optional

from .. import logs
from ..config.schema import MlflowSettings
from ..spec.result import TrainResult
from .layout import TAG_FAILURE

DEFAULT_DB = "mlflow.db"
MODEL_NAME = "model"
EXAMPLE_ROWS = 4
# MLflow's limits (mlflow.utils.validation): value lengths, key length, entities per batch.
_MAX_PARAM_VALUE, _MAX_TAG_VALUE, _MAX_KEY = 6000, 8000, 250
_PARAMS_PER_BATCH, _METRICS_PER_BATCH = 100, 1000
_TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel")
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
# check_reachable: seconds to connect, then to answer; MLflow's own client retries for minutes
_CHECK_CONNECT_S, _CHECK_READ_S = 5.0, 30.0
_CHECK_ENDPOINT = "/api/2.0/mlflow/experiments/get-by-name"
_BAD_KEY_CHARS = re.compile(r"[^\w.\- /]")  # MLflow also allows ':' but not on Windows

log = logs.get("tracking")


def tracking_uri(settings: MlflowSettings) -> str:
    """The store: config, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``."""
    uri = settings.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or "sqlite:///" + os.path.abspath(DEFAULT_DB)


def redact(text: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://***@host`` anywhere in ``text``."""
    return _USERINFO.sub("***@", text)


def setup(settings: MlflowSettings) -> str:
    """Point MLflow at the store and experiment (created if missing); logs and returns the URI.

    Returns:
        The tracking URI with any credentials redacted.
    """
    redacted = redact(tracking_uri(settings))
    check_reachable(settings)
    _prepare(settings)
    log.info("MLflow: %s, experiment '%s'", redacted, settings.experiment)
    return redacted


def check_reachable(settings: MlflowSettings) -> None:
    """One quick request to an http(s) tracking server, so a wrong URI fails in seconds.

    MLflow's own client retries with backoff for minutes before it gives up, and then says
    little the user can act on. Other stores (sqlite, file, databricks, ...) are not checked.
    Credentials are MLflow's: ``user:pass@`` in the URI, ``MLFLOW_TRACKING_USERNAME``/
    ``MLFLOW_TRACKING_PASSWORD``, ``MLFLOW_TRACKING_TOKEN``; TLS as
    ``MLFLOW_TRACKING_INSECURE_TLS``, ``MLFLOW_TRACKING_SERVER_CERT_PATH`` and
    ``MLFLOW_TRACKING_CLIENT_CERT_PATH`` say.

    Raises:
        ConfigError: The server cannot be reached, refuses the credentials, or answers with an
            error; the message names the URI (credentials redacted) and what to check.
    """
    from urllib.parse import unquote, urlsplit, urlunsplit

    uri = tracking_uri(settings)
    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https"):
        return
    import requests

    from ..errors import ConfigError

    shown = redact(uri)
    source = "mlflow.tracking_uri" if settings.tracking_uri else "MLFLOW_TRACKING_URI"
    netloc = parts.netloc.rpartition("@")[2]  # credentials go in a header, never in the URL
    url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + _CHECK_ENDPOINT, "", ""))
    env = os.environ
    auth, headers = None, {}
    user, password = env.get("MLFLOW_TRACKING_USERNAME"), env.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:  # the order MLflow's rest_utils follows
        auth = (user, password)
    elif env.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"
    elif parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
    insecure = env.get("MLFLOW_TRACKING_INSECURE_TLS", "").strip().lower() in ("true", "1")
    verify = False if insecure else env.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or True
    cert = env.get("MLFLOW_TRACKING_CLIENT_CERT_PATH") or None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # urllib3's InsecureRequestWarning: the user chose it
            response = requests.get(
                url, params={"experiment_name": settings.experiment}, auth=auth,
                headers=headers, verify=verify, cert=cert,
                timeout=(_CHECK_CONNECT_S, _CHECK_READ_S))
    except requests.exceptions.SSLError:
        raise ConfigError(
            f"the MLflow tracking server at {shown} failed the TLS handshake; set "
            "MLFLOW_TRACKING_SERVER_CERT_PATH to its CA bundle (or MLFLOW_TRACKING_INSECURE_TLS="
            f"true to skip verification), or fix {source}") from None
    except requests.exceptions.RequestException as exc:
        raise ConfigError(
            f"cannot reach the MLflow tracking server at {shown} ({_why_unreachable(exc)}); "
            f"check that `mlflow server` is running there and the host and port are right, "
            f"or fix {source}") from None
    if response.ok and "json" in response.headers.get("Content-Type", ""):
        return
    if response.ok:  # a proxy's login page, say
        raise ConfigError(
            f"{shown} answered the MLflow REST API with "
            f"{response.headers.get('Content-Type') or 'no content type'}, not MLflow's JSON; "
            f"is it the MLflow tracking server's base address (and logged in)? fix {source}")
    status = response.status_code
    if status in (401, 403) and os.environ.get("MLFLOW_TRACKING_AUTH"):
        return  # an MLflow auth plugin signs MLflow's own requests, not this one: let it try
    if status in (401, 403):
        raise ConfigError(
            f"the MLflow tracking server at {shown} refused the credentials (HTTP {status}); "
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or "
            "MLFLOW_TRACKING_TOKEN, to an account that may read and write there")
    if status == 404 and "RESOURCE_DOES_NOT_EXIST" in response.text:
        return  # an MLflow server without the experiment yet: setup creates it
    if status == 404:
        raise ConfigError(
            f"{shown} answered HTTP 404 to the MLflow REST API (GET ...{_CHECK_ENDPOINT}); "
            f"is it the MLflow tracking server's base address? fix {source}")
    raise ConfigError(
        f"the MLflow tracking server at {shown} answered HTTP {status} "
        f"{response.reason or ''}".rstrip() + f"; check the server's log, or fix {source}")


def _why_unreachable(exc: Exception) -> str:
    """A few words for why a request failed: refused, timed out, unknown host, ..."""
    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"no connection within {_CHECK_CONNECT_S:g} s"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"connected, but no answer within {_CHECK_READ_S:g} s"
    text = str(exc)
    if "Connection refused" in text or "ConnectionRefusedError" in text:
        return "connection refused: nothing listens on that port"
    if any(s in text for s in ("NameResolutionError", "Name or service not known",
                               "nodename nor servname", "getaddrinfo failed",
                               "Temporary failure in name resolution")):
        return "the host name does not resolve"
    if isinstance(exc, requests.exceptions.InvalidURL):
        return "the URI is not a valid URL"
    return type(exc).__name__


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

    experiment_id = _prepare(settings)
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
            mlflow.end_run(status)


def log_params(params: Mapping[str, Any], run_id: Optional[str] = None) -> None:
    """Log params into the active run (or ``run_id``), in batches of MLflow's maximum size.

    Nested mappings become dotted keys (flatten a config with ``config.as_flat_dict``); values
    are stringified with credentials redacted and truncated to MLflow's limit; keys sanitised.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Param

    run_id = run_id or _active_run_id()
    items = [Param(k, _text(v, _MAX_PARAM_VALUE)) for k, v in _flatten(params).items()]
    client = MlflowClient()
    for i in range(0, len(items), _PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[i:i + _PARAMS_PER_BATCH], synchronous=True)


def log_training(result: TrainResult, params: Mapping[str, Any],
                 register_name: Optional[str] = None, run_id: Optional[str] = None) -> dict:
    """Record one training in the active run (or ``run_id``): params, metrics and the model.

    History metrics are logged per epoch (``step`` = epoch index); test metrics and
    ``wall_seconds``, ``samples_per_second``, ``epochs_run``, ``num_proc`` and
    ``learning_rate`` at the last epoch's step. The model is rebuilt from the result and logged
    with a signature (float32 ``(-1, input_dim)`` in, predictions out) and a small input example.

    Args:
        result: What the training returned.
        params: Hyper-parameters / config to log (see :func:`log_params`).
        register_name: Register the model under this name (a new version each call).
        run_id: Log into this run instead of the active one.

    Returns:
        ``{"run_id", "model_uri", "registered_version"}``; the version is None when not
        registered. ``model_uri`` loads with :func:`load_model`.
    """
    import mlflow.tensorflow
    import numpy as np
    from mlflow.models import infer_signature

    run_id = run_id or _active_run_id()
    log_params(params, run_id)  # first: MLflow copies the run's params onto the logged model
    summary = {**result.test_metrics, "wall_seconds": result.wall_seconds,
               "samples_per_second": result.samples_per_second, "epochs_run": result.epochs_run,
               "num_proc": result.num_proc, "learning_rate": result.learning_rate}
    last = log_metrics(result.history, summary, run_id)

    from ..executor.models import rebuild

    model = rebuild(result)
    example = np.random.default_rng(0).random((EXAMPLE_ROWS, result.input_dim), dtype=np.float32)
    signature = infer_signature(example, model(example, training=False).numpy())
    with _muted():
        info = mlflow.tensorflow.log_model(
            model, name=MODEL_NAME, signature=signature, input_example=example,
            registered_model_name=register_name, pip_requirements=_pip_requirements(),
            run_id=run_id, step=last)
    version = getattr(info, "registered_model_version", None)  # MLflow prints "Created version"
    return {"run_id": run_id, "model_uri": info.model_uri,
            "registered_version": int(version) if version is not None else None}


def log_metrics(history: Mapping[str, Sequence[float]], summary: Mapping[str, float] = {},
                run_id: Optional[str] = None) -> int:
    """Per-epoch ``history`` (step = epoch index) and ``summary`` at the last epoch's step.

    Returns:
        The last step, so a model logged afterwards can be attached to it.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    run_id = run_id or _active_run_id()
    now = int(time.time() * 1000)
    last = max((len(v) for v in history.values()), default=1) - 1
    metrics = [Metric(_key(name), float(v), now, epoch)
               for name, values in history.items() for epoch, v in enumerate(values)]
    metrics += [Metric(_key(k), float(v), now, last) for k, v in summary.items()]
    client = MlflowClient()
    for i in range(0, len(metrics), _METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[i:i + _METRICS_PER_BATCH], synchronous=True)
    return last


def set_tags(tags: Mapping[str, Any], run_id: Optional[str] = None) -> None:
    """Set tags on the active run (or ``run_id``), values redacted and truncated."""
    from mlflow import MlflowClient

    run_id = run_id or _active_run_id()
    client = MlflowClient()
    for k, v in tags.items():
        client.set_tag(run_id, _key(k), _text(v, _MAX_TAG_VALUE))


def open_child_run(settings: MlflowSettings, run_name: str, parent_run_id: str,
                   tags: Mapping[str, Any]) -> str:
    """A RUNNING child run (explicit run id, no active-run state: safe from any thread)."""
    from mlflow import MlflowClient

    experiment_id = _prepare(settings)
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
    log_steps(run_id, {k: (last, [v]) for k, v in summary.items()})
    client.set_terminated(run_id, status or ("FAILED" if failure else "FINISHED"))
    return run_id


def delete_run(run_id: str) -> None:
    """Mark a run deleted (MLflow keeps it in its trash; searches no longer see it)."""
    from mlflow import MlflowClient

    MlflowClient().delete_run(run_id)


def find_runs(settings: MlflowSettings, tags: Mapping[str, str],
              parent_run_id: Optional[str] = None) -> list:
    """Runs of ``settings.experiment`` carrying all ``tags`` (and the parent, if given),
    newest first. Used to find a search by name and its trials when resuming."""
    import mlflow

    experiment_id = _prepare(settings)
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
    run_id = run_id or _active_run_id()
    MlflowClient().set_tag(run_id, TAG_FAILURE, _text(reason, _MAX_TAG_VALUE))
    if active is not None and active.info.run_id == run_id:
        mlflow.end_run("FAILED")
    else:
        MlflowClient().set_terminated(run_id, "FAILED")


def load_model(model_uri: str, settings: Optional[MlflowSettings] = None):
    """Load a logged model back as a ``tf.keras`` model.

    ``model_uri`` is what :func:`log_training` returned (``models:/<id>``), or ``models:/<name>/
    <version>`` or ``runs:/<run_id>/model``. Pass ``settings`` when MLflow is not set up yet in
    this process. For framework-free inference, ``mlflow.pyfunc.load_model(uri).predict(x)``
    with a float32 ``np.ndarray`` of shape ``(n, input_dim)`` also works.
    """
    import mlflow.tensorflow

    if settings is not None:
        _prepare(settings)
    with _muted():
        return mlflow.tensorflow.load_model(model_uri)


def _prepare(settings: MlflowSettings) -> str:
    """Set the tracking URI and experiment quietly; return the experiment id."""
    import mlflow
    from mlflow.exceptions import MlflowException

    _quiet_mlflow()
    uri = tracking_uri(settings)
    if "://" not in uri or uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the user chose it; honour it
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is None:
        try:
            return client.create_experiment(settings.experiment,
                                            artifact_location=_artifact_location(uri, settings))
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


def _artifact_location(uri: str, settings: MlflowSettings) -> Optional[str]:
    """Artifacts of a SQLite store live next to the database, not in whatever cwd is current."""
    if not uri.startswith("sqlite:///") or ":memory:" in uri:
        return None  # file stores keep artifacts inside; servers and databases decide themselves
    db = Path(uri[len("sqlite:///"):].split("?")[0]).resolve()
    slug = re.sub(r"[^\w.-]+", "_", settings.experiment).strip("._") or "experiment"
    return (db.parent / "mlartifacts" / slug).as_uri()


def _quiet_mlflow() -> None:
    """Hide schema-migration INFO lines and SQLAlchemy deprecations a user cannot act on."""
    logs.quiet_libraries()
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"sqlalchemy(\.|$)")
    warnings.filterwarnings("ignore", message=r".*noload.*loader strategy.*")


@contextlib.contextmanager
def _muted() -> Iterator[None]:
    """Hide Keras progress bars and not-compiled warnings while MLflow saves or loads a model."""
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        tf_log.setLevel(level)


def _pip_requirements() -> list[str]:
    """Pinned from this environment: MLflow's inference spawns a TensorFlow process (~8 s/model).

    MLflow adds its own pin; cloudpickle reads the Keras custom objects MLflow saves.
    """
    from importlib import metadata

    reqs = []
    for names in (_TF_DISTRIBUTIONS, ("numpy",), ("cloudpickle",)):
        for name in names:
            with contextlib.suppress(metadata.PackageNotFoundError):
                reqs.append(f"{name}=={metadata.version(name)}")
                break
        else:
            reqs.append(names[0])
    return reqs


def _active_run_id() -> str:
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
    text = redact(str(value))
    return text if len(text) <= limit else text[:limit - 3] + "..."
