"""A worker killed mid-training: `train` exits 1 naming the killed rank (never a survivor that
the engine stopped because of it), within 2 minutes, no hang — with each engine. A Horovod rank
is the process with its ``HOROVOD_RANK``; a tf_distribute rank the barrier task's child with
its ``SPARKDL_TUNE_RANK``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
from conftest import train_overrides

RANK_VARIABLE = {"horovod": "HOROVOD_RANK", "tf_distribute": "SPARKDL_TUNE_RANK"}


def _rank_processes(root: psutil.Process, rank: str, variable: str) -> list[psutil.Process]:
    found = []
    for proc in root.children(recursive=True):
        try:
            if proc.environ().get(variable) == rank and "python" in proc.name():
                found.append(proc)
        except psutil.Error:
            continue
    return found


# Horovod's rank 0 and tf_distribute's rank 1 in the default suite; the other ranks (the same
# paths, another rank) in make test-slow
@pytest.mark.parametrize("backend,victim", [
    pytest.param("horovod", "1", marks=[pytest.mark.slow, pytest.mark.requires_horovod]),
    pytest.param("horovod", "0", marks=pytest.mark.requires_horovod),
    ("tf_distribute", "1"), pytest.param("tf_distribute", "0", marks=pytest.mark.slow)])
def test_killing_a_worker_fails_the_run_naming_the_rank(tiny_dataset, tmp_path, backend,
                                                        victim):
    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    cmd = [exe, "train", "conf/jobs/fashion_mlp.yaml",
           *train_overrides(tiny_dataset, tmp_path, execution__num_proc=2,
                            execution__backend=backend, training__epochs=2000),
           "spark.master=local[2]", "spark.conf.spark.ui.enabled=false"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    output: list[str] = []
    errors: list[str] = []
    threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True).start()
    threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True).start()
    try:
        deadline = time.monotonic() + 240
        # the ranks' output (Keras epoch lines) goes to stderr: stdout is for the JSON summary
        while not any("Epoch 3/" in line for line in errors):
            assert proc.poll() is None, "".join(errors)[-3000:]
            assert time.monotonic() < deadline, "training never reached epoch 3"
            time.sleep(0.5)
        variable = RANK_VARIABLE[backend]
        victims = _rank_processes(psutil.Process(proc.pid), victim, variable)
        assert victims, f"no process with {variable}={victim} found"
        killed_at = time.monotonic()
        for process in victims:
            process.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=300)  # the run ends (does not hang); no speed asserted
        elapsed = time.monotonic() - killed_at
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.5)
    failure = [ln for ln in errors if ln.startswith("sparkdl-tune: failed:")]
    assert code == 1
    assert len(failure) == 1, "".join(errors)[-3000:]
    survivor = "0" if victim == "1" else "1"
    assert f"rank {victim} failed first" in failure[0], failure[0]
    assert f"rank {survivor} was stopped because of it" in failure[0], failure[0]
    assert not output, "".join(output)[-2000:]  # nothing but a JSON summary belongs on stdout
    print(f"\nkilled rank {victim}, exit {code} after {elapsed:.1f} s: {failure[0]}")
