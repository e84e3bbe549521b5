"""Executor side of warm ranks: one long-lived barrier task per rank that trains trial after
trial (driver side: :mod:`sparkdl_tune.driver.launch.warm`).

Like :mod:`.barrier`'s task, each task shares ``host:port`` with the others and starts one
child Python process for its rank (``python -m sparkdl_tune.executor.warm_ranks``); but the
child lives across trials: it connects to the driver (:mod:`sparkdl_tune.spec.warm`), keeps
TensorFlow imported and its backend started (MultiWorkerMirroredStrategy is made once per
process), and loops: receive a job, train it with :func:`.worker.run` exactly as a one-trial
rank does, send back ``(RankReport, TrainResult or None)``, next. A ``None`` job, or the driver
gone, ends it cleanly. A trial that raises ends the child with the error's line: its task
fails, Spark aborts the stage (the other ranks with it), and the driver starts fresh ranks
for the next trial — a strategy whose collectives failed is not reused.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile

from .barrier import leave, rank_env, run_child


def task(address_env: str, iterator):
    """The barrier task: yields how many jobs this rank trained, once the driver ends it."""
    from ..spec.warm import ENV

    rank, env = rank_env()
    env[ENV] = address_env
    with tempfile.TemporaryDirectory(prefix="sparkdl_tune_warm") as tmp:
        out_file = os.path.join(tmp, "out.pkl")
        ended = run_child(rank, [__name__, out_file], env, out_file)
    yield ended


def main(out_file: str) -> None:
    """The child: ask the driver for jobs until it says stop."""
    from ..spec import outcome
    from ..spec.warm import ENV, WarmAddress, hello, receive, send
    from .barrier import RANK

    address = WarmAddress.from_env(os.environ[ENV])
    rank = int(os.environ[RANK])
    trained, code, ended = 0, 0, 0
    try:
        sock = socket.create_connection((address.host, address.port), timeout=60)
        sock.settimeout(None)
        hello(sock, address.token, rank)
        backend = None
        while True:
            try:
                job = receive(sock)
            except (ConnectionError, OSError):  # the driver went away: nothing more to do
                break
            if job is None:
                break
            backend = _train_one(job, backend, sock, send)
            trained += 1
        ended = trained
    except BaseException as exc:
        ended, code = outcome.describe(exc)[:400], 1
    leave(ended, out_file, code)


def _train_one(job, backend, sock, send):
    """Train ``job`` on this rank's warm backend (made on the first job) and send the rank's
    outcome; the backend, for the next job."""
    from .backends import make_backend
    from .worker import run

    if backend is None:
        backend = make_backend(job)
    else:  # the previous trial's model and graph: dropped; the strategy stays
        import tensorflow as tf

        tf.keras.backend.clear_session()
    send(sock, run(job, backend=backend))
    return backend


if __name__ == "__main__":
    main(*sys.argv[1:2])
