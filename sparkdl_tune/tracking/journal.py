"""Finished trials kept on local disk while the tracking server is away.

A search must not lose a finished trial because MLflow is down. Every trial record goes
through :meth:`Journal.record`: it is written to MLflow with retries and backoff
(:data:`RETRY_DELAYS`); when the server stays away, the record is kept as one JSON file in
``<search.output_dir>/<search.name>/pending-mlflow/`` and the search goes on. While the outage
lasts, later records are tried once and kept at once (no backoff per trial); the first write
that succeeds ends the outage.

The next run of the same search — or this one, at the end of its trials, if the server is
back — replays the kept records into MLflow before anything else reads the trials
(:meth:`Journal.replay`): each becomes its trial's run exactly once (a run the trial had
opened while it ran, or a half-written one, is replaced), and its file is removed. Driver side.
"""

from __future__ import annotations

import json
import os
import pathlib
import threading
import time
from collections.abc import Callable
from typing import Any, Optional

from .. import logs
from .outage import is_outage

log = logs.get("tune")

RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0)  # seconds between the attempts of one write
FOLDER = "pending-mlflow"
class Journal:
    """See the module docstring. ``folder`` is the search's ``pending-mlflow`` directory."""

    def __init__(self, folder: str | os.PathLike, sleep: Callable[[float], None] = time.sleep):
        self.folder = pathlib.Path(folder)
        self.sleep = sleep
        self.outage = False
        self._lock = threading.Lock()

    @classmethod
    def of_search(cls, output_dir: str, name: str) -> "Journal":
        return cls(pathlib.Path(output_dir) / name / FOLDER)

    # -- writing -----------------------------------------------------------------------
    def record(self, number: int, write: Callable[..., str], **record: Any) -> Optional[str]:
        """``write(**record)`` (it returns the run id), retried while the server is away;
        ``None`` when the record was kept here instead."""
        delays = () if self.outage else RETRY_DELAYS
        for attempt in range(len(delays) + 1):
            try:
                run_id = write(**record)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                if attempt < len(delays):
                    self.sleep(delays[attempt])
                    continue
                self.keep(number, record)
                return None
            if self.outage:
                self.outage = False
                log.info("tune: MLflow is reachable again; %d trial record(s) wait in %s for "
                         "the end of the search", len(self.pending()), self.folder)
            return run_id
        return None  # (not reached)

    def keep(self, number: int, record: dict[str, Any]) -> pathlib.Path:
        from ..files import write_json_atomic

        path = self.folder / f"trial-{number + 1:05d}.json"
        with self._lock:
            write_json_atomic(path, json.dumps({"number": number, **record}, default=str))
            if not self.outage:
                self.outage = True
                log.warning("tune: the MLflow tracking server is unreachable; finished trials "
                            "are kept in %s and written to MLflow when it is back (at the end "
                            "of this search, or by the next run of the same command)",
                            self.folder)
            else:
                log.info("tune: trial %d kept in %s (MLflow still unreachable)", number + 1,
                         self.folder)
        return path

    # -- replaying ---------------------------------------------------------------------
    def pending(self) -> list[pathlib.Path]:
        return sorted(self.folder.glob("trial-*.json")) if self.folder.is_dir() else []

    def replay(self, settings: Any, parent_run_id: str) -> int:
        """Write every kept record to MLflow under ``parent_run_id``, exactly once each;
        returns how many are left (the server is still away). Records of another parent run
        (an older search of the same name) are written to that run."""
        from . import store as tracking
        from .layout import TAG_TRIAL, TAG_VALS

        files = self.pending()
        if not files:
            return 0
        done = 0
        for path in files:
            record = json.loads(path.read_text())
            number = record.pop("number")
            parent = record.pop("parent_run_id", None) or parent_run_id
            try:
                vals = (record.get("tags") or {}).get(TAG_VALS)
                for run in tracking.find_runs(settings, {TAG_TRIAL: str(number)},
                                              parent_run_id=parent):
                    if run.data.tags.get(TAG_VALS) in (None, vals):
                        # opened while it ran, or half written (or written before the answer
                        # was lost): replaced, so the trial is there once
                        tracking.delete_run(run.info.run_id)
                record.update(run_id=None, logged={})
                tracking.record_run(settings, parent_run_id=parent, **record)
            except Exception as exc:
                if is_outage(exc):
                    left = len(files) - done
                    log.warning("tune: MLflow is still unreachable; %d trial record(s) stay in "
                                "%s", left, self.folder)
                    return left
                raise
            path.unlink()
            done += 1
        log.info("tune: wrote %d kept trial record(s) from %s to MLflow", done, self.folder)
        try:
            self.folder.rmdir()
        except OSError:
            pass
        return 0
