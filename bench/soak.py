"""Soak: one search of 100 trials of a tiny model on local[2]; the driver must stay flat.

    .venv/bin/python bench/soak.py [--trials 100] [--json out.json] [--work DIR]

Prepares a tiny separable 3-class table with the package's own ``prepare
synthetic-classification`` (600 rows, 8 features), then runs ONE ``sparkdl-tune tune`` of
``--trials`` trials of a [8] MLP, 1 epoch each, in parallel mode (SparkTrials, parallelism 2)
on ``local[2]``, with a sqlite MLflow store, no retrain and no report. Each time the driver logs
``tune: trial N/M`` (one line per finished trial) this script samples the driver Python
process (the CLI): RSS, thread count and open file descriptors, plus the Spark JVM's RSS for
information. Prints the samples at trials 10, 25, 50, 75 and 100 (the last), the growth from
trial 10 to the last, and the two halves of it (10 -> middle, middle -> last): a leak grows in
both halves, a one-off warm-up only in the first. ``--json`` writes every sample.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPACE = {"training.learning_rate": {"loguniform": [1e-3, 3e-2]},
         "training.batch_size": {"choice": [32, 64]}}
TRIAL_LINE = re.compile(r"tune: trial (\d+)/")
MARKS = (10, 25, 50, 75, 100)


def _exe(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def _env() -> dict[str, str]:
    venv_bin = os.path.dirname(sys.executable)
    return {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}",
            "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1", "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


SPARK = ["spark.master=local[2]", "spark.conf.spark.ui.enabled=false",
         "spark.conf.spark.sql.shuffle.partitions=2"]


def prepare(work: str) -> str:
    data = os.path.join(work, "blobs")
    if not os.path.isdir(data):
        subprocess.run([_exe("sparkdl-tune"), "prepare", "synthetic-classification",
                        "--out", data, "--rows", "600", "--features", "8", "--classes", "3",
                        "--seed", "1", *SPARK], check=True, cwd=ROOT, env=_env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    return data


def tune_command(data: str, work: str, trials: int, name: str) -> list[str]:
    job = os.path.join(work, "soak.yaml")
    with open(job, "w") as f:
        json.dump({"search": {"space": SPACE}}, f)  # JSON is YAML
    return [_exe("sparkdl-tune"), "tune", "--conf-dir", os.path.join(ROOT, "conf"), job,
            f"data.path={data}",
            f"data.cache_url={work}/cache", f"mlflow.tracking_uri=sqlite:///{work}/mlflow.db",
            "mlflow.experiment=soak", "mlflow.registered_model_name=null",
            f"search.name={name}", "search.space_file=null",
            "search.algorithm=tpe", "search.execution_mode=parallel", "search.parallelism=2",
            f"search.max_trials={trials}", "search.retrain=false", "search.report=false",
            f"search.output_dir={work}/out", "model.units=[8]", "training.epochs=1", *SPARK]


def sample(proc) -> dict[str, float]:
    """RSS (MB), threads and open fds of the driver ``proc`` (psutil), and its JVM's RSS."""
    import psutil

    with proc.oneshot():
        row = {"rss_mb": proc.memory_info().rss / 2**20, "threads": proc.num_threads(),
               "fds": proc.num_fds()}
    jvm = 0
    for child in proc.children(recursive=True):
        try:
            if child.name() == "java":
                jvm = max(jvm, child.memory_info().rss)
        except psutil.Error:
            pass
    row["jvm_rss_mb"] = jvm / 2**20
    return row


def soak(trials: int, work: str, log_path: str) -> dict:
    """Run the search; every sample, keyed by finished-trial count, and the exit code."""
    import psutil

    data = prepare(work)
    name = f"soak-{int(time.time())}"
    samples: dict[int, dict[str, float]] = {}
    started = time.monotonic()
    with open(log_path, "w", buffering=1) as log:  # line-buffered: follow it with tail -f
        proc = subprocess.Popen(tune_command(data, work, trials, name), cwd=work, env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        driver = psutil.Process(proc.pid)
        for line in proc.stderr:
            log.write(line)
            found = TRIAL_LINE.search(line)
            if found:
                try:
                    samples[int(found.group(1))] = {**sample(driver),
                                                    "seconds": time.monotonic() - started}
                except psutil.Error:
                    pass
        code = proc.wait()
    return {"returncode": code, "trials": trials, "samples": samples,
            "seconds": time.monotonic() - started, "log": log_path}


def growth(samples: dict[int, dict[str, float]], a: int, b: int) -> dict[str, float]:
    return {k: samples[b][k] - samples[a][k] for k in ("rss_mb", "threads", "fds", "jvm_rss_mb")}


def table(result: dict) -> str:
    samples = result["samples"]
    last = max(samples) if samples else 0
    marks = [m for m in MARKS if m < last] + [last]
    lines = ["| trial | driver RSS MB | threads | open fds | JVM RSS MB | s |",
             "|---:|---:|---:|---:|---:|---:|"]
    for m in marks:
        s = samples.get(m)
        if s:
            lines.append(f"| {m} | {s['rss_mb']:.0f} | {s['threads']} | {s['fds']} | "
                         f"{s['jvm_rss_mb']:.0f} | {s['seconds']:.0f} |")
    if 10 in samples and last > 10:
        mid = (10 + last) // 2
        for a, b in ((10, last), (10, mid), (mid, last)):
            g = growth(samples, a, b)
            lines.append(f"| growth {a} -> {b} | {g['rss_mb']:+.1f} | {g['threads']:+d} | "
                         f"{g['fds']:+d} | {g['jvm_rss_mb']:+.0f} | |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--work", help="folder for data, store and outputs (default: a temp dir)")
    parser.add_argument("--json", help="write every sample here")
    args = parser.parse_args()
    work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="soak-"))
    os.makedirs(work, exist_ok=True)
    result = soak(args.trials, work, os.path.join(work, "tune.log"))
    print(table(result))
    print(f"exit {result['returncode']}, {len(result['samples'])} samples, "
          f"{result['seconds']:.0f} s; log {result['log']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if result["returncode"] == 0 and len(result["samples"]) >= args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
