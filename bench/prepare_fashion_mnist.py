"""Wall time of `sparkdl-tune prepare fashion-mnist` on local[2], Spark start-up included,
against the naive baseline (pandas frame of Python lists -> spark.createDataFrame -> Parquet)
measured in the same run.

    .venv/bin/python bench/prepare_fashion_mnist.py [--no-baseline]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _proc import run_sampled  # noqa: E402

SOURCE = "/usr/share/datasets/fashion-mnist"

BASELINE = r"""
import sys, time, numpy as np, pandas as pd
sys.path.insert(0, %(root)r)
from sparkdl_tune.driver.datasets.idx import read_rows
from pyspark.sql import SparkSession
t0 = time.monotonic()
spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.driver.memory", "6g").getOrCreate())
x = read_rows(%(src)r + "/train-images-idx3-ubyte.gz").astype(np.float32) / 255
y = read_rows(%(src)r + "/train-labels-idx1-ubyte.gz").astype(int)
pdf = pd.DataFrame({"features": [list(map(float, r)) for r in x], "label": y})
spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "false")
spark.createDataFrame(pdf).write.parquet(%(out)r)
print("baseline rows", len(pdf))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench-prepare-")
    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    try:
        ours = run_sampled([exe, "prepare", "fashion-mnist", "--out", f"{work}/ours",
                            "spark.master=local[2]", "spark.conf.spark.ui.enabled=false"],
                           stdout=open(os.devnull, "w"))
        assert ours["returncode"] == 0, ours
        print(f"sparkdl-tune prepare fashion-mnist (70,000 rows, 3 splits, validated): "
              f"{ours['seconds']:.1f} s wall, target <= 60 s: "
              f"{'met' if ours['seconds'] <= 60 else 'MISSED'}")
        if not args.no_baseline:
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            code = BASELINE % {"root": root, "src": SOURCE, "out": f"{work}/baseline"}
            base = run_sampled([sys.executable, "-c", code])
            assert base["returncode"] == 0, base
            print(f"baseline createDataFrame(pandas lists) of the 60,000 train rows only: "
                  f"{base['seconds']:.1f} s wall")
            print(f"ratio baseline/ours: {base['seconds'] / ours['seconds']:.2f}x faster")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    started = time.monotonic()
    main()
