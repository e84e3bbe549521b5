"""Executor side of the ``barrier`` launcher: one Spark barrier task per rank.

Each task finds a free port, shares ``host:port`` with the others (``allGather``), and trains
its rank in a fresh child Python process (``python -m sparkdl_tune.executor.barrier``) that
gets the peer list, its rank and its GPUs in the environment (:data:`PEERS`, :data:`RANK`,
:data:`GPUS`); the backend (e.g. ``tf_distribute``) builds its cluster from them.

Why a child process: TensorFlow's MultiWorkerMirroredStrategy must be created before any other
TensorFlow op of its process, and can be created only once; pyspark reuses its Python workers
(``spark.python.worker.reuse``, on by default), so a second training (the next trial) in a
reused worker would find the first one's TensorFlow context. A child also keeps TensorFlow out
of the Python workers other Spark jobs (SparkTrials) use. The child dies with its task
(``PR_SET_PDEATHSIG``), so a barrier stage Spark aborts leaves nothing running.

A rank that fails raises :class:`RankFailed` in its task; its message starts with
``sparkdl_tune rank <r> failed:`` for the driver to read out of Spark's error, and the
barrier stage fails at once (Spark stops the other tasks): no rank waits on a dead peer.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile

PEERS, RANK, GPUS = "SPARKDL_TUNE_PEERS", "SPARKDL_TUNE_RANK", "SPARKDL_TUNE_GPUS"
FAILED = "sparkdl_tune rank {rank} failed: {how}"


class RankFailed(RuntimeError):
    """This task's rank failed (its own error, or killed); the message names the rank."""


def task(job, iterator):
    """The barrier task (``rdd.barrier().mapPartitions``): yields this rank's
    ``(RankReport, TrainResult or None)``."""
    rank, env = rank_env()
    with tempfile.TemporaryDirectory(prefix="sparkdl_tune_rank") as tmp:
        job_file, out_file = os.path.join(tmp, "job.pkl"), os.path.join(tmp, "out.pkl")
        from pyspark import cloudpickle

        with open(job_file, "wb") as f:
            cloudpickle.dump(job, f)
        ended = run_child(rank, [__name__, job_file, out_file], env, out_file)
    yield ended


def rank_env() -> tuple[int, dict[str, str]]:
    """In a barrier task: this task's rank, and the environment of its child (the peers, the
    rank, the GPUs); every task of the stage shares its ``host:port`` first."""
    import json

    from pyspark import BarrierTaskContext

    ctx = BarrierTaskContext.get()
    rank = ctx.partitionId()
    host = _host()
    peers = [json.loads(m) for m in ctx.allGather(json.dumps(f"{host}:{_free_port()}"))]
    gpus = []
    if "gpu" in ctx.resources():
        gpus = list(ctx.resources()["gpu"].addresses)
    return rank, {**os.environ, PEERS: json.dumps(peers), RANK: str(rank),
                  GPUS: ",".join(gpus)}


def run_child(rank: int, args: list[str], env: dict[str, str], out_file: str):
    """Run ``python -m <args>`` as this rank and wait; what it wrote to ``out_file``, or
    :class:`RankFailed` when it failed or wrote an error's line."""
    child = subprocess.Popen([sys.executable, "-m", *args], env=env,
                             stdout=sys.stderr.fileno(), preexec_fn=_die_with_parent)
    code = child.wait()
    ended = None
    if os.path.exists(out_file):
        with open(out_file, "rb") as f:
            ended = pickle.load(f)
    if code != 0 or ended is None or isinstance(ended, str):
        how = ended if isinstance(ended, str) else (
            f"ended without an error of its own: {_exit(code)}")
        raise RankFailed(FAILED.format(rank=rank, how=how))
    return ended


def _exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return (f"killed by {name} (exit code {128 - code}); look for the out-of-memory killer "
                "or a lost executor in that executor's log")
    return f"exit code {code}"


def _host() -> str:
    host = os.environ.get("SPARK_LOCAL_IP") or socket.gethostname()
    try:
        return socket.gethostbyname(host)
    except OSError:
        return "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the task's own kill still ends the stage
        pass


def main(job_file: str, out_file: str) -> int:
    """The child: train this rank; write ``(report, result)``, or the error's one line."""
    from ..spec import outcome
    from .worker import run

    with open(job_file, "rb") as f:
        job = pickle.load(f)
    try:
        ended = run(job)
    except BaseException as exc:
        ended, code = outcome.describe(exc)[:400], 1
    else:
        code = 0
    leave(ended, out_file, code)


def leave(ended, out_file: str, code: int) -> None:
    """Write what the child ends with for its task, and exit at once."""
    with open(out_file + ".tmp", "wb") as f:
        pickle.dump(ended, f)
    os.replace(out_file + ".tmp", out_file)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # TensorFlow's collective threads would keep a clean exit waiting


if __name__ == "__main__":
    main(*sys.argv[1:3])
