"""How each rank of a multi-rank training ended, and which rank a failed job should blame.

When one rank dies (killed, out of memory) or raises, the engine stops the others and they
fail too (Horovod: "Horovod has been shut down"). The launcher may then name whichever
non-zero exit the driver noticed first, which is a race: often a survivor. So each rank
prints one marker line as it ends (executor side, :func:`announce`), the driver reads the
markers out of the ranks' forwarded output (:class:`Endings`) and blames the rank that failed
first on its own (:func:`blame`): one that raised an error of its own, else one that ended
without any marker (a signal, the out-of-memory killer, a lost executor). Ranks whose error is
only a consequence of another's are never the culprit. Which errors are consequences, and how
a rank's output lines are prefixed, is each engine's own knowledge (its backend and launcher
modules); this module is engine-neutral.

Nothing here imports TensorFlow, Horovod or pyspark: both sides share it.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Optional

MARKER = "@@sparkdl_tune.rank_end "
OK, OWN_ERROR, STOPPED = "ok", "error", "stopped"

def describe(exc: BaseException) -> str:
    """``Type: last line of the message`` (a traceback's last line, as a user would read it)."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__


def announce(exc: Optional[BaseException] = None, consequence: bool = False) -> None:
    """Executor side: print this rank's ending as one marker line on stderr (``consequence``:
    the backend says ``exc`` only tells that another rank failed)."""
    if exc is None:
        end, error = OK, None
    else:
        end, error = (STOPPED if consequence else OWN_ERROR), describe(exc)[:400]
    sys.stderr.write(MARKER + json.dumps({"end": end, "error": error}) + "\n")
    sys.stderr.flush()


@dataclass
class Ending:
    rank: int
    end: str
    error: Optional[str]
    order: int  # arrival order on the driver


class Endings:
    """Driver side: collects the markers out of the ranks' output lines, in arrival order."""

    def __init__(self):
        self._by_rank: dict[int, Ending] = {}
        self._lock = threading.Lock()

    def take(self, rank: int, text: str) -> bool:
        """Record rank ``rank``'s output line ``text`` (the launcher took off its prefix) if
        it is a marker; True when it was (the caller drops it)."""
        if not text.startswith(MARKER):
            return False
        try:
            fields = json.loads(text[len(MARKER):])
        except ValueError:
            return False
        with self._lock:
            self._by_rank.setdefault(rank, Ending(rank, fields.get("end", OWN_ERROR),
                                                  fields.get("error"), len(self._by_rank)))
        return True

    def wait(self, ranks: int, seconds: float) -> dict[int, Ending]:
        """Every rank's ending once all ``ranks`` reported or ``seconds`` passed (output may
        trail the exit codes the launcher already has; a killed rank never reports)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if len(self._by_rank) >= ranks:
                    break
            time.sleep(0.1)
        with self._lock:
            return dict(self._by_rank)


def blame(endings: dict[int, Ending], ranks: int, first_rank: Optional[int],
          first_exit: Optional[int], stopped_by: str = "the engine stopped them"
          ) -> Optional[str]:
    """The culprit, how it ended and what happened to the others, in one sentence.

    Args:
        endings: What each rank reported (see :class:`Endings`).
        ranks: How many ranks the job had.
        first_rank, first_exit: The rank and exit code the launcher named (first noticed), if
            any.
        stopped_by: How the others were stopped, e.g. "Horovod shut down".

    Returns:
        None when the markers say nothing (e.g. no rank started): the caller falls back on
        the launcher's own message.
    """
    own = sorted((e for e in endings.values() if e.end == OWN_ERROR), key=lambda e: e.order)
    silent = [r for r in range(ranks) if r not in endings]
    if own:
        culprits = [own[0].rank]
        how = f"raised {own[0].error}"
        if first_rank == own[0].rank and first_exit is not None:
            how += f" (exit code {first_exit})"
    elif silent and endings:
        culprits = silent
        how = "ended without an error of its own: " + _killed(
            first_exit if first_rank in silent else None)
    else:
        return None
    others = sorted(r for r, e in endings.items() if e.end != OK and r not in culprits)
    who = _ranks(culprits)
    text = f"{who} failed first: {how}"
    if others:
        text += (f"; {_ranks(others)} {'was' if len(others) == 1 else 'were'} stopped because "
                 f"of it ({stopped_by})")
    return text


def _killed(exit_code: Optional[int]) -> str:
    if exit_code is not None and exit_code > 128:
        try:
            name = signal.Signals(exit_code - 128).name
        except ValueError:
            name = f"signal {exit_code - 128}"
        return (f"killed by {name} (exit code {exit_code}); look for the out-of-memory killer "
                "or a lost executor in that executor's log")
    if exit_code is not None:
        return f"exit code {exit_code}"
    return ("killed (a signal, the out-of-memory killer or a lost executor); see that "
            "executor's log")


def _ranks(ranks: list[int]) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(str(r) for r in ranks)
