"""Executor side: one trial slot's long-lived Spark task (``search.runner: executors``).

:func:`serve` asks the driver for a trial (``next``), runs ``objective(point, key)`` in this
Python worker, sends the result back (``result``) and asks again, until the driver says it is
done. TensorFlow stays imported between trials and the decoded data stays in
:mod:`.data_cache`; each result says where its data came from (``data_source``: ``cache`` or
``parquet``). The driver's side is :mod:`sparkdl_tune.search.runners.executors`; the wire
format is :mod:`sparkdl_tune.spec.report`. Each message is one short connection, so a worker
is connected to the driver between trials only for an instant.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..spec.report import ReportTo, decode, encode, pack, unpack

CONNECT_SECONDS, ANSWER_SECONDS = 10.0, 60.0
TRIES = 3  # a driver hiccup is retried; past that the task fails and the slot is replaced


def serve(objective: Callable[..., dict], target: ReportTo, slot: int,
          _rows: Iterator[Any]) -> Iterator[int]:
    """A ``mapPartitions`` function: run trials until the driver is done; yields how many."""
    from . import data_cache

    data_cache.enable()
    try:
        ran = _trials(objective, target, slot)
    finally:  # Spark reuses this worker for other tasks: they read as they always do
        data_cache.disable()
    yield ran


def _trials(objective: Callable[..., dict], target: ReportTo, slot: int) -> int:
    from . import data_cache

    attempt = _attempt()
    ran = 0
    while True:
        answer = ask(target, {"event": "next", "slot": slot, "attempt": attempt})
        if answer.get("done"):
            break
        trial = answer.get("trial")
        if not trial:
            time.sleep(float(answer.get("wait") or 0.2))
            continue
        message: dict[str, Any] = {"event": "result", "slot": slot, "number": trial["number"]}
        before = data_cache.counts()
        try:
            result = dict(objective(unpack(trial["point"]), trial["key"]))
            source = data_cache.source_since(before)
            if source:
                result["data_source"] = source
            message["result"] = pack(result)
        except Exception as exc:  # the objective itself raised: this trial fails, not the slot
            message["error"] = [type(exc).__name__, str(exc).strip()[:300]]
        ask(target, message)
        ran += 1
    return ran


def ask(target: ReportTo, message: dict[str, Any]) -> dict[str, Any]:
    """Send one message on a new connection and return the driver's answer; raises
    ``ConnectionError`` after :data:`TRIES` failed tries."""
    line = encode({"token": target.token, **message})
    error: Exception = ConnectionError("no try made")
    for attempt in range(TRIES):
        try:
            with socket.create_connection((target.host, target.port),
                                          timeout=CONNECT_SECONDS) as sock:
                sock.settimeout(ANSWER_SECONDS)
                sock.sendall(line)
                with sock.makefile("rb") as f:
                    answer = f.readline()
            if not answer:
                raise ConnectionError("the driver closed the connection")
            return decode(answer)
        except (OSError, ValueError) as exc:
            error = exc
            time.sleep(0.5 * (attempt + 1))
    raise ConnectionError(f"could not reach the driver at {target.host}:{target.port}: {error}")


def _attempt() -> int:
    """This task's attempt number (Spark retries a failed task with the same partition)."""
    try:
        from pyspark import TaskContext

        context = TaskContext.get()
        return int(context.attemptNumber()) if context is not None else 0
    except ImportError:
        return 0
