"""What both runners share: ``parallelism`` driver threads, one per trial slot, each running
the runner's ``_slot(slot)`` loop (inheritable threads: Spark's job group and tags of the
thread that starts them carry over), ended together by :meth:`SlotThreads.close` (after the
running trials, within a while) or :meth:`SlotThreads.cancel` (at once)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Optional

CLOSE_SECONDS = 60.0  # close(): running trials may end this long before their jobs are cancelled


class SlotThreads:
    """Subclasses give ``_slot(slot)`` (the loop, until ``_closing`` is set) and
    ``_stop_jobs()`` (cancel the Spark jobs of their slots)."""

    thread_name = "sparkdl-tune-slot"

    def __init__(self, spark, parallelism: int):
        self.spark, self.parallelism = spark, parallelism
        self.broken: Optional[str] = None  # Spark's text once no slot keeps a task running
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        from pyspark import inheritable_thread_target

        for slot in range(self.parallelism):
            thread = threading.Thread(target=inheritable_thread_target(self._slot),
                                      args=(slot,), name=f"{self.thread_name}-{slot}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def cancel(self) -> None:
        """Stop at once: running trials are cancelled (the engine has ended them)."""
        self._closing.set()
        self._stop_jobs()

    def close(self) -> None:
        """Idle slots end at their next ask; jobs still running after a while are cancelled."""
        self._closing.set()
        for thread in self._threads:
            thread.join(CLOSE_SECONDS / max(1, len(self._threads)))
        if any(t.is_alive() for t in self._threads):
            self._stop_jobs()
            for thread in self._threads:
                thread.join(CLOSE_SECONDS)

    def watch(self, timeout: Optional[float], progress: Callable[[], int],
              early_stop: Optional[Callable[[], bool]], lost: Callable[[str], None],
              stop: Callable[[str], None], reasons: tuple[str, str, str],
              poll: float = 0.2) -> Callable[[], None]:
        """Start the search's watcher thread; returns the function that ends it (call it once
        the search's loop is over). Every ``poll`` seconds: slots that keep failing end the
        live trials (``lost(text)``); ``early_stop()`` is asked each time ``progress()`` (the
        trials that count for it) grows; past ``timeout`` seconds the search ends. Then
        ``stop(why)`` (the engine cancels what is queued or running) and :meth:`cancel`;
        ``reasons``: the engine's words for (lost slots, early stop, timeout)."""
        done = threading.Event()

        def loop() -> None:
            started, seen = time.monotonic(), 0
            while not done.wait(poll):
                why = None
                if self.broken:
                    lost(self.broken)
                    why = reasons[0]
                count = progress()
                if not why and early_stop is not None and count > seen:
                    seen = count
                    why = reasons[1] if early_stop() else None
                if not why and timeout is not None and time.monotonic() - started > timeout:
                    why = reasons[2]
                if why:
                    stop(why)
                    self.cancel()
                    return

        thread = threading.Thread(target=loop, name=f"{self.thread_name}-watcher", daemon=True)
        thread.start()

        def end() -> None:
            done.set()
            thread.join()

        return end

    def _slot(self, slot: int) -> None:
        raise NotImplementedError

    def _stop_jobs(self) -> None:
        raise NotImplementedError
