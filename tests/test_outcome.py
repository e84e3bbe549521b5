"""Which rank a failed Horovod job blames: the first to fail on its own, never a rank that
Horovod only shut down because of it, whatever order the ranks' reports arrive in."""

from __future__ import annotations

import json

from sparkdl_tune.spec.outcome import MARKER, Endings, announce, blame, is_consequence


def marker(rank: int, end: str, error: str | None = None) -> str:
    return f"[{rank}]<stderr>:{MARKER}{json.dumps({'end': end, 'error': error})}"


SHUT_DOWN = ("UnknownError: Horovod has been shut down. This was caused by an exception on one "
             "of the ranks or an attempt to allreduce ... after one of the ranks finished")


def test_a_rank_that_raised_is_blamed_even_when_a_survivor_reported_first():
    endings = Endings()
    assert endings.take(marker(0, "stopped", SHUT_DOWN))  # the consequence arrives first
    assert endings.take(marker(2, "stopped", SHUT_DOWN))
    assert endings.take(marker(1, "error", "ResourceExhaustedError: OOM when allocating"))
    assert not endings.take("[0]<stdout>:Epoch 3/2000")  # ordinary output is not a marker
    got = blame(endings.wait(3, 0), 3, first_rank=0, first_exit=1)
    assert got == ("rank 1 failed first: raised ResourceExhaustedError: OOM when allocating; "
                   "ranks 0, 2 were stopped because of it (Horovod shut down)")


def test_a_silent_rank_is_blamed_with_its_signal_when_horovod_names_it():
    endings = Endings()
    endings.take(marker(0, "stopped", SHUT_DOWN))
    got = blame(endings.wait(2, 0), 2, first_rank=1, first_exit=137)
    assert got.startswith("rank 1 failed first: ended without an error of its own: killed by "
                          "SIGKILL (exit code 137)")
    assert got.endswith("rank 0 was stopped because of it (Horovod shut down)")


def test_a_silent_rank_is_blamed_even_when_horovod_noticed_a_survivor_first():
    endings = Endings()
    endings.take(marker(1, "stopped", SHUT_DOWN))
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
        announce(exc)
    try:
        raise ValueError("bad batch\nshape (3,) does not match (4,)")
    except ValueError as exc:
        assert not is_consequence(exc)
        announce(exc)
    lines = capsys.readouterr().err.splitlines()
    endings = Endings()
    for rank, line in enumerate(lines):
        assert endings.take(f"[{rank}]<stderr>:{line}")
    got = endings.wait(2, 0)
    assert got[0].end == "stopped"
    assert (got[1].end, got[1].error) == ("error", "ValueError: shape (3,) does not match (4,)")
