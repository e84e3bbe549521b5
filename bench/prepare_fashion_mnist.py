"""Wall time of `sparkdl-tune prepare fashion-mnist` on local[2], Spark start-up included,
against the naive baseline (pandas frame of Python lists -> spark.createDataFrame -> Parquet)
measured in the same run.

    .venv/bin/python bench/prepare_fashion_mnist.py [--no-baseline] [--json PATH]

Also the floor without Spark (the IDX files read with numpy and written with pyarrow, one
process, no validation) and, with ``--json PATH``, the rows bench/table.py prints.
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


FLOOR = r"""
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
sys.path.insert(0, %(root)r)
from sparkdl_tune.driver.datasets.idx import read_rows
for name in ("train", "t10k"):
    x = read_rows(%(src)r + f"/{name}-images-idx3-ubyte.gz").astype(np.float32) / 255
    y = read_rows(%(src)r + f"/{name}-labels-idx1-ubyte.gz").astype(np.int32)
    feats = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
    pq.write_table(pa.table({"features": feats, "label": y}), %(out)r + f"-{name}.parquet")
"""

TARGET_SECONDS = 15.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--json", help="write the table's rows here (bench/table.py)")
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
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        floor = run_sampled([sys.executable, "-c", FLOOR % {
            "root": root, "src": SOURCE, "out": f"{work}/floor"}])
        floor_s = floor["seconds"] if floor["returncode"] == 0 else None
        print("floor without Spark (numpy + pyarrow, 70,000 rows, one process): "
              + (f"{floor_s:.1f} s wall" if floor_s else f"exit {floor['returncode']}"))
        base_s = None
        if not args.no_baseline:
            code = BASELINE % {"root": root, "src": SOURCE, "out": f"{work}/baseline"}
            base = run_sampled([sys.executable, "-c", code])
            assert base["returncode"] == 0, base
            print(f"baseline createDataFrame(pandas lists) of the 60,000 train rows only: "
                  f"{base['seconds']:.1f} s wall")
            print(f"ratio baseline/ours: {base['seconds'] / ours['seconds']:.2f}x faster")
            base_s = base["seconds"]
        from _rows import row, write

        anchor = "; ".join([f"floor without Spark {floor_s:.1f} s" if floor_s else "floor n/a",
                            f"naive createDataFrame (train only) {base_s:.1f} s" if base_s
                            else "naive n/a (--no-baseline)"])
        write(args.json, [row(
            "prepare Fashion-MNIST, whole command (70,000 rows, 3 splits)", ours["seconds"],
            f"<= {TARGET_SECONDS:g} s", anchor, floor_s,
            f"{ours['seconds'] - (floor_s or 0):.1f} s above the floor: the JVM and Spark "
            f"start, the Spark jobs and validation (peak JVM RSS "
            f"{ours['peak_jvm_rss_mb']:.0f} MB)", unit="s")])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    started = time.monotonic()
    main()
