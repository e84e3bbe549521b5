"""A parallel trial whose Spark task failed (not the training: the task itself): one clear line.

The objective never raises (a failed training returns the ``fail`` status), so a trial's Spark
task fails only when something outside the training broke it: the Python worker running it was
killed (the out-of-memory killer, a SIGKILL) or the whole executor was lost. The engine (or the
warm-executor runner) holds Spark's text of that failure; :func:`reason` turns it into the line
recorded as the attempt's error and the trial's ``failure_reason``. Engine-neutral: it reads
text, no engine's records.

Retries: a trial's task is one partition of a one-partition job, so when Spark retries a failed
task (``spark.task.maxFailures``: 1 on ``local[N]``, 4 on a cluster) it runs the same trial's
point again, never a different trial; only the last attempt's failure (``failed 4 times``)
reaches the engine, and the reason says how many attempts were made.
"""

from __future__ import annotations

import re
from typing import Optional

_LOST_TASK = re.compile(r"Lost task \S+ in stage \S+ \(TID \d+\) \(([^)]*)\): ([^\n]*)")
_ATTEMPTS = re.compile(r"failed (\d+) times")
_WORKER_GONE = ("Python worker exited unexpectedly", "Python worker exited", "crashed",
                "EOFException", "Connection reset")
_EXECUTOR_GONE = ("ExecutorLostFailure", "executor lost", "Executor heartbeat timed out",
                  "Remote RPC client disassociated", "Container killed", "exited caused by")
MAX_CAUSE = 300


def reason(text: Optional[str]) -> str:
    """The one-line failure reason of a trial whose Spark task failed with ``text`` (the
    Py4JJavaError's message), keeping Spark's own first meaningful line."""
    text = (text or "").strip()
    lost = _LOST_TASK.search(text)
    where = _where(lost.group(1)) if lost else ""
    cause = _short(lost.group(2) if lost else _first_line(text))
    attempts = _ATTEMPTS.search(text)
    tries = (f" after {attempts.group(1)} attempts"
             if attempts and int(attempts.group(1)) > 1 else "")
    on = f" on {where}" if where else ""
    if any(w in text for w in _EXECUTOR_GONE):
        return (f"executor lost: the executor running this trial{on} went away{tries}; look "
                f"for the out-of-memory killer or a lost node in that executor's log "
                f"(Spark: {cause})")
    if any(w in text for w in _WORKER_GONE):
        return (f"executor lost: the Python worker running this trial{on} was killed "
                f"(signal 9 / exited unexpectedly){tries}; look for the out-of-memory killer in "
                f"that executor's log (Spark: {cause})")
    return f"Spark task failed{on}{tries}: {cause or 'no reason given'}"


def _where(text: str) -> str:
    """Spark's ``10.0.0.5 executor 2`` -> ``executor 2 (10.0.0.5)``."""
    found = re.fullmatch(r"(\S+) executor (\S+)", text.strip())
    return f"executor {found.group(2)} ({found.group(1)})" if found else text.strip()


def _first_line(text: str) -> str:
    """Spark's own first meaningful line: past py4j's ``An error occurred while calling``."""
    for line in text.splitlines():
        line = line.strip().lstrip(":").strip()
        if line and not line.startswith(("An error occurred while calling", "at ")):
            return line
    return ""


def _short(cause: str) -> str:
    """``org.apache.spark.SparkException: X`` -> ``SparkException: X``, cut to one line."""
    cause = re.sub(r"\b(?:[a-z_][\w$]*\.)+([A-Z][\w$]*(?:Exception|Error|Failure))", r"\1",
                   cause.strip())
    return cause[:MAX_CAUSE]
