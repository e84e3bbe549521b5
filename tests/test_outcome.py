"""Which rank a failed multi-rank job blames: the first to fail on its own, never a rank that
the engine only stopped because of it, whatever order the ranks' reports arrive in. The
Horovod-specific parts (its output prefix, its consequence errors) live in its modules; the
barrier launcher reads the rank out of Spark's own error."""

from __future__ import annotations

import json

from sparkdl_tune.driver.launch.barrier import describe_failure
from sparkdl_tune.driver.launch.horovod import STOPPED_BY, take
from sparkdl_tune.executor.backends.horovod import HorovodBackend
from sparkdl_tune.spec.outcome import MARKER, Endings, announce, blame

is_consequence = HorovodBackend().is_consequence


def marker(rank: int, end: str, error: str | None = None) -> str:
    return f"[{rank}]<stderr>:{MARKER}{json.dumps({'end': end, 'error': error})}"


SHUT_DOWN = ("UnknownError: Horovod has been shut down. This was caused by an exception on one "
             "of the ranks or an attempt to allreduce ... after one of the ranks finished")


def test_a_rank_that_raised_is_blamed_even_when_a_survivor_reported_first():
    endings = Endings()
    assert take(endings, marker(0, "stopped", SHUT_DOWN))  # the consequence arrives first
    assert take(endings, marker(2, "stopped", SHUT_DOWN))
    assert take(endings, marker(1, "error", "ResourceExhaustedError: OOM when allocating"))
    assert not take(endings, "[0]<stdout>:Epoch 3/2000")  # ordinary output is not a marker
    got = blame(endings.wait(3, 0), 3, first_rank=0, first_exit=1, stopped_by=STOPPED_BY)
    assert got == ("rank 1 failed first: raised ResourceExhaustedError: OOM when allocating; "
                   "ranks 0, 2 were stopped because of it (Horovod shut down)")


def test_a_silent_rank_is_blamed_with_its_signal_when_horovod_names_it():
    endings = Endings()
    take(endings, marker(0, "stopped", SHUT_DOWN))
    got = blame(endings.wait(2, 0), 2, first_rank=1, first_exit=137, stopped_by=STOPPED_BY)
    assert got.startswith("rank 1 failed first: ended without an error of its own: killed by "
                          "SIGKILL (exit code 137)")
    assert got.endswith("rank 0 was stopped because of it (Horovod shut down)")


def test_a_silent_rank_is_blamed_even_when_horovod_noticed_a_survivor_first():
    endings = Endings()
    take(endings, marker(1, "stopped", SHUT_DOWN))
    got = blame(endings.wait(2, 0), 2, first_rank=1, first_exit=1)  # the race of issue 9
    assert got.startswith("rank 0 failed first: ended without an error of its own: killed")
    assert "rank 1 was stopped because of it" in got


def test_no_markers_leave_the_message_to_horovod():
    assert blame({}, 2, first_rank=1, first_exit=1) is None


def test_the_executor_side_marker_round_trips(capsys):
    try:
        raise RuntimeError("Horovod has been shut down. This was caused by ...")
    except RuntimeError as exc:
        assert is_consequence(exc)
        announce(exc, is_consequence(exc))
    try:
        raise ValueError("bad batch\nshape (3,) does not match (4,)")
    except ValueError as exc:
        assert not is_consequence(exc)
        announce(exc, is_consequence(exc))
    lines = capsys.readouterr().err.splitlines()
    endings = Endings()
    for rank, line in enumerate(lines):
        assert take(endings, f"[{rank}]<stderr>:{line}")
    got = endings.wait(2, 0)
    assert got[0].end == "stopped"
    assert (got[1].end, got[1].error) == ("error", "ValueError: shape (3,) does not match (4,)")


SPARK_BARRIER_FAILURE = """An error occurred while calling o123.collectAndServe.
: org.apache.spark.SparkException: Job aborted due to stage failure: Could not recover from a \
failed barrier ResultStage. Most recent failure reason: Stage failed because barrier task \
ResultTask(0, 1) finished unsuccessfully.
org.apache.spark.api.python.PythonException: Traceback (most recent call last):
  File "/x/sparkdl_tune/executor/barrier.py", line 70, in task
    raise RankFailed(FAILED.format(rank=rank, how=how))
sparkdl_tune.executor.barrier.RankFailed: sparkdl_tune rank 1 failed: {how}
\tat org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException
"""


def test_a_failed_barrier_stage_names_the_task_that_failed():
    killed = SPARK_BARRIER_FAILURE.format(
        how="ended without an error of its own: killed by SIGKILL (exit code 137); look ...")
    got = describe_failure(killed, 2)
    assert got.startswith("tf.distribute training failed: rank 1 failed first: ended without "
                          "an error of its own: killed by SIGKILL (exit code 137)"), got
    assert got.endswith("rank 0 was stopped because of it (Spark aborted the barrier stage)")
    raised = SPARK_BARRIER_FAILURE.format(how="ValueError: bad batch")
    assert "rank 1 failed first: raised ValueError: bad batch" in describe_failure(raised, 3)
    # a task whose Python worker died: only Spark's line names it
    lost = SPARK_BARRIER_FAILURE.split("org.apache.spark.api.python")[0] + (
        "org.apache.spark.SparkException: Python worker exited unexpectedly (crashed)")
    got = describe_failure(lost, 2)
    assert got.startswith("tf.distribute training failed: rank 1 failed first: raised "
                          "org.apache.spark.SparkException: Python worker exited"), got
