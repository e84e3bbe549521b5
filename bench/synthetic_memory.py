"""Memory of `prepare synthetic-regression` at scale: the driver JVM capped at -Xmx1g, the
Python driver's peak RSS sampled every 0.1 s (rows are generated on the executors).

    .venv/bin/python bench/synthetic_memory.py [--rows 20000000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from _proc import run_sampled  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--distractors", type=int, default=2)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench-synth-")
    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    try:
        r = run_sampled([exe, "prepare", "synthetic-regression", "--rows", str(args.rows),
                         "--distractors", str(args.distractors), "--noise", "0.01",
                         "--out", f"{work}/ds", "spark.master=local[2]",
                         "spark.conf.spark.driver.memory=1g",
                         "spark.conf.spark.ui.enabled=false"],
                        stdout=open(os.devnull, "w"))
        assert r["returncode"] == 0, r
        print(f"synthetic-regression {args.rows:,} rows: {r['seconds']:.1f} s wall; "
              f"JVM {r['jvm_xmx']} peak RSS {r['peak_jvm_rss_mb']:.0f} MB; Python driver peak "
              f"RSS {r['peak_rss_mb']:.0f} MB (target < 1536 MB: "
              f"{'met' if r['peak_rss_mb'] < 1536 else 'MISSED'})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
