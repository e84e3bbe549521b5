"""The ``horovod`` launcher: the ranks as a ``horovod.spark.run`` job on Spark tasks.

Driver side. A failed Horovod worker surfaces here as one :class:`FatalError` naming the rank
that failed first and how it ended (markers of :mod:`sparkdl_tune.spec.outcome`, read out of
Horovod's "[rank]<stream>:" prefixed output), never as a hang.
"""

from __future__ import annotations

import gc
import io
import os
import re
import sys
import threading

from ...errors import FatalError
from ...executor.worker import run
from ...spec.job import TrainJob
from ...spec.outcome import Endings, blame
from ...spec.result import TrainResult
from . import check_slots, log, replace

# Horovod prefixes each forwarded line with the rank and the stream: "[1]<stderr>:text".
_PREFIXED = re.compile(r"^(?:.*?)\[(\d+)\]<(?:stdout|stderr)>:(.*)$")
STOPPED_BY = "Horovod shut down"


def train(spark, job: TrainJob, start_timeout: int = 120) -> TrainResult:
    """Run ``job`` and return rank 0's result (with every rank's report in ``extra``)."""
    check_slots(spark, job.num_proc)
    import horovod.spark

    log.info("train: Horovod job on %d Spark tasks (%d TensorFlow threads each)",
             job.num_proc, job.threads)
    job = replace(job, in_process=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_GATEWAY")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = _Tee(sys.stderr)
    try:
        # Horovod forks this driver to check how it was built (MPI? Gloo?). A forked child
        # that garbage-collects TensorFlow objects of an earlier in-process training crashes
        # ("a Horovod worker exited: Empty()"): collect now and freeze what is left, so the
        # child never touches it. use_gloo (Horovod is built with Gloo, ENVIRONMENT.md) spares
        # the MPI check altogether.
        gc.collect()
        gc.freeze()
        try:
            outcomes = horovod.spark.run(run, args=(job,), num_proc=job.num_proc, env=env,
                                         stdout=out, stderr=out, verbose=0, use_gloo=True,
                                         start_timeout=start_timeout)
        finally:
            gc.unfreeze()
    except Exception as exc:  # Horovod raises plain Exceptions/RuntimeErrors
        endings = out.endings.wait(job.num_proc, ENDINGS_WAIT_SECONDS)
        raise FatalError(_describe_failure(exc, out.text(), endings, job.num_proc)) from exc
    result = next(r for _, r in outcomes if r is not None)
    result.extra["ranks"] = [rep.__dict__ for rep, _ in outcomes]
    return result


ENDINGS_WAIT_SECONDS = 3.0  # for ranks' last output lines to trail in after their exit codes


def _describe_failure(exc: Exception, output: str, endings=None, ranks: int = 0) -> str:
    """One line: the rank that failed first, how it ended, and what became of the others."""
    text = str(exc)
    rank = re.search(r"Process name: (\d+)", text)
    exit_code = re.search(r"Exit code: (-?\d+)", text)
    blamed = blame(endings or {}, ranks, int(rank.group(1)) if rank else None,
                   int(exit_code.group(1)) if exit_code else None, STOPPED_BY)
    if blamed:
        return f"Horovod training failed: {blamed}"
    if not rank and not endings:  # no rank ran: Horovod itself failed (start timeout, ...)
        lines = text.strip().splitlines()
        return (f"Horovod could not run the job: {type(exc).__name__}"
                + (f": {lines[0][:400]}" if lines else ""))
    who = f"rank {rank.group(1)}" if rank else "a Horovod worker"
    errors = [ln for ln in output.splitlines()
              if re.search(r"(Error|Exception|Killed|Signal|signal)\b", ln)]
    cause = errors[-1].strip() if errors else text.strip().splitlines()[0] if text else repr(exc)
    code = f" (exit code {exit_code.group(1)})" if exit_code else ""
    return f"Horovod training failed: {who} exited{code}: {cause[:400]}"


class _Tee(io.TextIOBase):
    """Forwards worker output to ``target`` (stderr) and keeps the tail for the failure
    message; the ranks' ending markers are taken out of it into :attr:`endings`."""

    def __init__(self, target, keep: int = 200):
        self.target, self.keep, self.lines = target, keep, []
        self.endings = Endings()
        self.lock = threading.Lock()

    def write(self, s: str) -> int:
        # Horovod writes whole prefixed lines ("[rank]<stream>:text\n"), one per call.
        with self.lock:
            for line in s.splitlines(keepends=True):
                if take(self.endings, line.rstrip("\r\n")):
                    continue
                self.target.write(line)
                self.lines.append(line.rstrip("\r\n"))
            del self.lines[: -self.keep]
        return len(s)

    def flush(self) -> None:
        self.target.flush()

    def text(self) -> str:
        with self.lock:
            return "\n".join(self.lines)


def take(endings: Endings, line: str) -> bool:
    """Hand a Horovod-prefixed output line to ``endings``; True when it was a marker."""
    match = _PREFIXED.match(line)
    return bool(match) and endings.take(int(match.group(1)), match.group(2))
