"""Executor side: a trial's per-epoch reports to the driver, and the driver's answer.

:class:`Reporter` is the connection (:mod:`sparkdl_tune.spec.report` has the wire format); it
never fails a trial: when the driver cannot be reached it warns once and training goes on
unreported. :func:`epoch_callback` is the Keras callback that sends the reports (rank 0 only) and
stops training when the driver says so — on every rank at the same epoch.
"""

from __future__ import annotations

import socket
import sys
import time
from typing import Any, Optional

from ..spec.report import ReportTo, decode, encode

CONNECT_SECONDS = 10.0
ANSWER_SECONDS = 60.0  # the driver answers at once; this only guards against a hung driver


class Reporter:
    """One trial's connection to the driver's report server."""

    def __init__(self, target: ReportTo):
        self.target = target
        self._sock: Optional[socket.socket] = None
        self._file = None
        self.broken = False

    def send(self, event: str, **fields: Any) -> dict[str, Any]:
        """Send one message; the driver's answer, or ``{}`` when it could not be had."""
        if self.broken:
            return {}
        message = {"token": self.target.token, "key": self.target.key, "event": event, **fields}
        for attempt in (1, 2):  # one reconnect: a dropped connection is not a lost driver
            try:
                if self._sock is None:
                    self._connect()
                self._sock.sendall(encode(message))
                line = self._file.readline()
                if not line:
                    raise ConnectionError("the driver closed the connection")
                return decode(line)
            except (OSError, ValueError) as exc:
                self.close()
                if attempt == 2:
                    self.broken = True
                    print(f"sparkdl_tune: could not report to the driver at "
                          f"{self.target.host}:{self.target.port} ({exc}); the trial goes on "
                          "without per-epoch reports", file=sys.stderr, flush=True)
        return {}

    def _connect(self) -> None:
        sock = socket.create_connection((self.target.host, self.target.port),
                                        timeout=CONNECT_SECONDS)
        sock.settimeout(ANSWER_SECONDS)
        self._sock, self._file = sock, sock.makefile("rb")

    def close(self) -> None:
        for thing in (self._file, self._sock):
            try:
                if thing is not None:
                    thing.close()
            except OSError:
                pass
        self._sock = self._file = None


def epoch_callback(tf, target: ReportTo, backend):
    """A Keras callback: rank 0 reports each epoch's logs and asks whether to go on; with
    several ranks every rank learns rank 0's answer (:meth:`Backend.from_root`), so all stop
    after the same epoch. After ``fit``, ``pruned`` holds ``(epoch, reason)`` when the driver
    stopped the trial."""
    rank = backend.rank

    class EpochReports(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.reporter = Reporter(target) if rank == 0 else None
            self.pruned: Optional[tuple[int, str]] = None
            self._started = time.monotonic()

        def on_train_begin(self, logs=None):
            if self.reporter:
                self.reporter.send("begin", params=target.params or {})

        def on_epoch_end(self, epoch, logs=None):
            answer: dict[str, Any] = {}
            if self.reporter:
                metrics = {k: float(v) for k, v in (logs or {}).items()
                           if isinstance(v, (int, float)) or hasattr(v, "__float__")}
                metrics["elapsed_seconds"] = time.monotonic() - self._started
                answer = self.reporter.send("epoch", epoch=epoch + 1, metrics=metrics)
            if backend.from_root(tf, bool(answer.get("stop")), f"sparkdl_tune_prune_{epoch}"):
                self.model.stop_training = True
                self.pruned = (epoch + 1, str(answer.get("reason", "")))

        def on_train_end(self, logs=None):
            if self.reporter:
                self.reporter.close()

    return EpochReports()
