"""Per-epoch reports from a running trial to the driver: where to send them, and the wire format.

A trial (a SparkTrials task, or rank 0 of a Horovod trial) opens one TCP connection to the
driver's report server and, for each message, writes one JSON line and reads one JSON line
back. The address is the Spark driver's host, so it works wherever executors can reach the
driver (other processes, other hosts); the token keeps strangers' lines out.

Messages (trial -> driver): ``{"token", "key", "event": "begin", "params"}`` when training
starts, ``{"token", "key", "event": "epoch", "epoch": n, "metrics": {...}}`` after each epoch
(``n`` counts finished epochs, from 1). Answer (driver -> trial): ``{"stop": bool, "reason":
str}``; a trial told to stop ends after that epoch and is recorded as *pruned*.

With ``search.runner: executors`` a slot's long-lived task also asks for work on the same
channel: ``{"token", "event": "next", "slot", "attempt"}`` is answered with ``{"trial":
{"number", "key", "point"}}``, ``{"wait": seconds}`` (nothing to run yet) or ``{"done": true}``;
``{"token", "event": "result", "slot", "number", "result"}`` hands back the trial's result
dict. Points and results travel as :func:`pack` text (pickle, base64): they hold NaN, tuples
and numpy values that JSON does not keep.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any, Optional


@dataclass(frozen=True)
class ReportTo:
    """Where one trial reports; ``key`` names the trial (unique per trial run)."""

    host: str
    port: int
    token: str
    key: str = ""
    params: Optional[dict[str, Any]] = None  # the trial's decoded point (for the driver)

    def for_trial(self, key: str, params: dict[str, Any]) -> ReportTo:
        return replace(self, key=key, params=params)


def encode(message: dict[str, Any]) -> bytes:
    """One line of JSON; NaN and infinities become null (JSON has none)."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return (json.dumps(clean(message), default=str) + "\n").encode()


def pack(value: Any) -> str:
    """``value`` as pickle in base64 text (for a JSON field)."""
    import base64
    import pickle

    return base64.b64encode(pickle.dumps(value)).decode("ascii")


def unpack(text: str) -> Any:
    """What :func:`pack` packed (the token-guarded channel's own messages only)."""
    import base64
    import pickle

    return pickle.loads(base64.b64decode(text))


def decode(line: bytes) -> dict[str, Any]:
    value = json.loads(line.decode())
    if not isinstance(value, dict):
        raise ValueError("a report is a JSON object")
    return value
