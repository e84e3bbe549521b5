"""Where the MLflow store is, with credentials kept out of sight, whether it answers and
whether a local store can be written (:func:`check_writable`, before Spark starts).

:func:`check_reachable` asks an http(s) tracking server once (5 s to connect, no retries)
before any data is read: a wrong address, a stopped server or refused credentials end in
seconds with a :class:`~sparkdl_tune.errors.ConfigError` naming the URI (redacted), instead of
after MLflow's own minutes of retries. No mlflow import.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Optional

from ..config.schema import MlflowSettings
from ..errors import redact  # noqa: F401 (the store's API; errors.py holds it for the public API)

DEFAULT_DB = "mlflow.db"
_NOT_PATHS = ("databricks", "databricks-uc", "uc")  # MLflow's store names with no "://"
# check_reachable: seconds to connect, then to answer; MLflow's own client retries for minutes
_CHECK_CONNECT_S, _CHECK_READ_S = 5.0, 30.0
_CHECK_ENDPOINT = "/api/2.0/mlflow/experiments/get-by-name"


def tracking_uri(settings: MlflowSettings) -> str:
    """The store: config, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``."""
    uri = settings.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or "sqlite:///" + os.path.abspath(DEFAULT_DB)


def credentials_to_env(uri: str) -> str:
    """``http(s)://user:secret@host`` -> ``http(s)://host``, the credentials moved to
    ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (where MLflow reads them) unless
    the environment already holds both (which MLflow uses before the URI's anyway).
    A URI with a user but no password is returned unchanged.

    MLflow writes its tracking URI into its messages (the "View run at" links it prints, the
    artifact URLs and failed requests it logs): given a URI without credentials, it cannot
    leak them. Any other URI is returned unchanged.
    """
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return uri
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    if not (user and password):  # MLflow sends basic auth from the environment only in pairs
        return uri
    env = os.environ
    if not (env.get("MLFLOW_TRACKING_USERNAME") and env.get("MLFLOW_TRACKING_PASSWORD")):
        env["MLFLOW_TRACKING_USERNAME"] = unquote(user)
        env["MLFLOW_TRACKING_PASSWORD"] = unquote(password)
    return urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))


def artifact_location(uri: str, settings: MlflowSettings) -> Optional[str]:
    """Artifacts of a SQLite store live next to the database, not in whatever cwd is current."""
    if not uri.startswith("sqlite:///") or ":memory:" in uri:
        return None  # file stores keep artifacts inside; servers and databases decide themselves
    db = Path(uri[len("sqlite:///"):].split("?")[0]).resolve()
    slug = re.sub(r"[^\w.-]+", "_", settings.experiment).strip("._") or "experiment"
    return (db.parent / "mlartifacts" / slug).as_uri()


def check_writable(settings: MlflowSettings) -> None:
    """A local store (SQLite file and its artifact folder, or a file store's folder) that
    cannot be written is a :class:`~sparkdl_tune.errors.ConfigError` before Spark starts, not
    a failure when the first run is logged. An experiment created earlier with its artifacts
    elsewhere keeps them there; that place is not looked at.
    """
    from ..config.writable import check_file, check_folder, local_path

    uri = tracking_uri(settings)
    env = os.environ.get("MLFLOW_TRACKING_URI")
    setting = "MLFLOW_TRACKING_URI" if env and not settings.tracking_uri else "mlflow.tracking_uri"
    store = "MLflow store" if settings.tracking_uri or env else "default MLflow store"
    if uri.startswith("sqlite:///"):
        if ":memory:" in uri:
            return
        check_file(setting, uri[len("sqlite:///"):].split("?")[0], f"{store}'s database")
        check_folder(setting, local_path(artifact_location(uri, settings)),
                     f"{store}'s artifact folder")
        return
    path = None if uri.split(":")[0] in _NOT_PATHS else local_path(uri)
    if path is not None:
        check_folder(setting, path, f"{store}'s folder")


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
