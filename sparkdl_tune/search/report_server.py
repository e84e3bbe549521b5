"""Driver side: the server running trials report to every epoch (see
:mod:`sparkdl_tune.spec.report` for the wire format, :mod:`sparkdl_tune.executor.reporter` for
the trial's end).

One thread per connected trial; each message goes to ``handle(message) -> answer`` (the
search's :class:`~sparkdl_tune.search.live.LiveTrials`), or to the handler
:meth:`ReportServer.route` gave its ``event`` (the executors runner's ``next`` and ``result``),
and the answer is written back at once. A
line without the search's token, or one that is not JSON, closes that connection and nothing else.
"""

from __future__ import annotations

import secrets
import socketserver
import threading
from collections.abc import Callable
from typing import Any, Optional

from .. import logs
from ..spec.report import ReportTo, decode, encode

log = logs.get("tune")


class ReportServer:
    """``with ReportServer(handle, host) as server:`` … ``server.address`` goes to the trials."""

    def __init__(self, handle: Callable[[dict[str, Any]], dict[str, Any]], host: str,
                 bind: str = ""):
        self.handle, self.host, self.bind = handle, host, bind
        self.token = secrets.token_hex(16)
        self.routes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        self._server: Optional[socketserver.ThreadingTCPServer] = None

    def route(self, events, handle: Optional[Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
        """Messages with one of ``events`` go to ``handle`` (None: back to the default)."""
        for event in events:
            if handle is None:
                self.routes.pop(event, None)
            else:
                self.routes[event] = handle

    @property
    def address(self) -> ReportTo:
        assert self._server is not None, "start the server first"
        return ReportTo(host=self.host, port=self._server.server_address[1], token=self.token)

    def __enter__(self) -> ReportServer:
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                for line in self.rfile:
                    try:
                        message = decode(line)
                    except ValueError:
                        return
                    if message.get("token") != outer.token:
                        return
                    try:
                        answer = outer.routes.get(message.get("event"), outer.handle)(message)
                    except Exception as exc:  # never stop a trial over the driver's hiccup
                        log.warning("tune: could not take a trial's report (%s: %s)",
                                    type(exc).__name__, exc)
                        answer = {}
                    self.wfile.write(encode({"stop": False, "reason": "", **answer}))
                    self.wfile.flush()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((self.bind, 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="sparkdl-tune-reports",
                         daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def driver_host(spark) -> str:
    """The address executors reach the driver at (Spark's own ``spark.driver.host``)."""
    import socket

    host = None
    if spark is not None:
        host = spark.sparkContext.getConf().get("spark.driver.host", None)
    return host or socket.gethostname()
