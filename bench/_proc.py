"""Run a command and sample the peak RSS of it and of its descendants (the Spark JVM)."""

from __future__ import annotations

import subprocess
import time

import psutil


def run_sampled(cmd: list[str], interval: float = 0.1, **kwargs) -> dict:
    """Run ``cmd``; return wall seconds, exit code, peak RSS (MB) of the process and its JVM."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, **kwargs)
    ps = psutil.Process(proc.pid)
    peak_self = peak_java = 0
    java_cmd: list[str] = []
    while proc.poll() is None:
        try:
            peak_self = max(peak_self, ps.memory_info().rss)
            for child in ps.children(recursive=True):
                if child.name() == "java":
                    rss = child.memory_info().rss
                    if rss > peak_java:  # the Spark JVM, not the short-lived launcher JVM
                        peak_java, java_cmd = rss, child.cmdline()
        except psutil.Error:
            pass
        time.sleep(interval)
    xmx = next((a for a in java_cmd if a.startswith("-Xmx")), "?")
    return {"seconds": time.monotonic() - started, "returncode": proc.returncode,
            "peak_rss_mb": peak_self / 2**20, "peak_jvm_rss_mb": peak_java / 2**20,
            "jvm_xmx": xmx}
