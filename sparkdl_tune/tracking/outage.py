"""When the tracking server is away: MLflow's own HTTP retries bounded, and what counts as an
outage (the server could not be reached) rather than a refusal (it answered no).

A leaf of the tracking package: the store bounds the retries when it sets MLflow up, the
journal keeps trial records while :func:`is_outage` says the server is away, and the live
trial runs tell the user why an epoch was not shown.
"""

from __future__ import annotations

import os
from typing import Optional

# MLflow's own HTTP retries (default 7 with backoff factor 2: ~4 minutes per call) are cut so
# that the retries here decide; a user's own settings win
MLFLOW_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                  "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def bound_mlflow_retries() -> None:
    for k, v in MLFLOW_RETRIES.items():
        os.environ.setdefault(k, v)


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` says the tracking server could not be reached (not that it refused
    the request)."""
    import requests

    seen: set[int] = set()
    e: Optional[BaseException] = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (requests.ConnectionError, requests.Timeout, ConnectionError,
                          TimeoutError)):
            return True
        text = str(e)
        if "Max retries exceeded" in text or "Connection refused" in text or \
                "Failed to establish a new connection" in text:
            return True
        e = e.__cause__ or e.__context__
    return False
