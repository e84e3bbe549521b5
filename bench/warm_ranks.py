"""Launch overhead of distributed trials: warm ranks against a launch per trial, same run.

    .venv/bin/python bench/warm_ranks.py [--trials 4] [--epochs 2] [--dry-run] [--json PATH]

Two tunes of conf/jobs/fashion_tune.yaml, one after the other, never side by side: distributed
mode, ``execution.num_proc=2``, ``execution.backend=tf_distribute``, MLP 256-128, batch 128,
``--trials`` random trials of ``--epochs`` epochs over the learning rate only, no early
stopping, no retrain, no report:

    warm    execution.warm=true: the trials share one running set of ranks
    cold    execution.warm=false: every trial launches its barrier stage and rank processes

Per trial, from its MLflow run: ``trial_seconds`` (the whole trial, as the driver's objective
saw it) minus ``train_seconds`` (the rank-0 ``fit`` plus its test evaluation) is the overhead:
the launch and everything else outside training. Printed per trial, as the mean over all trials
and over trials 2.., and the ratio warm ÷ cold. Target (issue 22): at most 3 s per trial after
the first. Anchors, measured in the same run (own process, local[2]): an empty barrier stage of
2 tasks (the first one, cold, then the mean of the next two) and, where Horovod is installed,
an empty ``horovod.spark.run`` of 2 processes (the same). ``--json PATH`` writes the rows
bench/table.py prints (bench/_rows.py). Data: data/fashion-mnist (prepared when missing);
stderr to bench/out/<name>.log.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_SECONDS = 3.0
OUT = os.path.join(ROOT, "bench", "out")
STORE = f"sqlite:///{OUT}/warm_ranks.db"


def command(warm: bool, args: argparse.Namespace, name: str) -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    space = json.dumps({"training.learning_rate": {"loguniform": [1e-3, 1e-2]}})
    return [exe, "tune", "conf/jobs/fashion_tune.yaml", f"search.name={name}",
            f"search.space={space}", "search.space_file=null", "search.algorithm=random",
            f"search.max_trials={args.trials}", f"search.trial_epochs={args.epochs}",
            "search.timeout_minutes=null", "search.stop_after_no_improvement=null",
            "search.retrain=false", "search.report=false", f"search.output_dir={OUT}",
            "search.execution_mode=distributed", "execution.num_proc=2",
            "execution.backend=tf_distribute", f"execution.warm={str(warm).lower()}",
            "model.units=[256,128]", "training.batch_size=128",
            "training.early_stopping.enabled=false", f"mlflow.tracking_uri={STORE}",
            "mlflow.experiment=bench-warm-ranks", "mlflow.registered_model_name=null",
            "spark.master=local[2]", "spark.conf.spark.ui.enabled=false"]


def trials(name: str) -> list[dict]:
    """Each trial's number, seconds, training seconds and launch, in trial order."""
    from mlflow.tracking import MlflowClient

    summary = json.load(open(os.path.join(OUT, name, "summary.json")))
    client = MlflowClient(tracking_uri=STORE)
    experiment = client.get_experiment_by_name("bench-warm-ranks").experiment_id
    runs = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = "
                              f"'{summary['parent_run_id']}' and tags.`sparkdl_tune.kind` = "
                              "'trial'")
    rows = [{"trial": int(r.data.tags["sparkdl_tune.trial"]) + 1,
             "seconds": r.data.metrics.get("trial_seconds"),
             "training": r.data.metrics.get("train_seconds"),
             "launch": r.data.metrics.get("launch")} for r in runs]
    return sorted(rows, key=lambda r: r["trial"])


ANCHOR = r"""
import importlib.util, json, os, sys, time
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .getOrCreate())
out = {}
def timed(fn, n=3):
    seconds = []
    for _ in range(n):
        t = time.monotonic(); fn(); seconds.append(time.monotonic() - t)
    return {"cold": seconds[0], "warm": sum(seconds[1:]) / (n - 1)}
out["barrier"] = timed(lambda: spark.sparkContext.parallelize(range(2), 2).barrier()
                       .mapPartitions(lambda it: [0]).collect())
if importlib.util.find_spec("horovod") is not None:
    import horovod.spark
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_GATEWAY")}
    out["horovod"] = timed(lambda: horovod.spark.run(lambda: 0, num_proc=2, verbose=0,
                                                     use_gloo=True, env=env))
print(json.dumps(out))
"""


def anchors() -> dict:
    """Seconds of an empty barrier stage and an empty horovod.spark.run: cold and warm."""
    with open(os.path.join(OUT, "warm_ranks-anchor.log"), "w") as log:
        proc = subprocess.run([sys.executable, "-c", ANCHOR], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=log, text=True)
    if proc.returncode != 0:
        return {}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table_rows(args: argparse.Namespace, results: dict, found: dict, per_trial: dict) -> list:
    """The rows for bench/table.py: warm launch per trial after the first, and the cold one."""
    from _rows import row

    barrier, horovod = found.get("barrier"), found.get("horovod")
    text = "; ".join(
        [f"empty barrier stage {barrier['warm']:.1f} s warm, {barrier['cold']:.1f} s cold"
         if barrier else "n/a (anchor failed)"]
        + [f"empty horovod.spark.run {horovod['warm']:.1f} s warm, {horovod['cold']:.1f} s cold"
           if horovod else "n/a (no horovod on this profile)"])
    value = barrier["warm"] if barrier else None
    out = []
    for mode in ("warm", "cold"):
        if mode not in results:
            continue
        later = results[mode][1]
        out.append(row(f"distributed trials (2 ranks, {args.trials} x {args.epochs} epochs), "
                       f"outside training per trial after the first, {mode} ranks", later,
                       "<= 3 s" if mode == "warm" else "", text, value,
                       f"per trial outside training: {per_trial[mode]}", unit="s"))
    return out


def overheads(rows: list[dict]) -> list[float]:
    return [r["seconds"] - r["training"] for r in rows
            if r["seconds"] is not None and r["training"] is not None]


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--json", help="write the table's rows here (bench/table.py)")
    args = parser.parse_args()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(OUT, exist_ok=True)
    if not args.dry_run and not os.path.isfile(
            os.path.join(ROOT, "data/fashion-mnist/manifest.json")):
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "sparkdl-tune"),
                        "prepare", "fashion-mnist", "--out", "data/fashion-mnist"],
                       cwd=ROOT, check=True)
    results, per_trial = {}, {}
    for warm in (True, False):
        mode = "warm" if warm else "cold"
        name = f"bench-warm-{mode}-{stamp}"
        cmd = command(warm, args, name)
        print(f"# {mode}: {' '.join(cmd[1:])}", flush=True)
        if args.dry_run:
            continue
        started = time.monotonic()
        with open(os.path.join(OUT, f"{name}.log"), "w") as log:
            done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
        wall = time.monotonic() - started
        if done.returncode != 0:
            print(f"{mode}: exit {done.returncode}; see bench/out/{name}.log")
            return 1
        rows = trials(name)
        extra = overheads(rows)
        results[mode] = (mean(extra), mean(extra[1:]))
        per_trial[mode] = ", ".join(f"{o:.1f}" for o in extra) + " s"
        print(f"{mode}: {len(rows)} trials in {wall:.1f} s (whole command); per trial "
              "(seconds, training, outside training, launch): " + "; ".join(
                  f"{r['trial']}: {r['seconds']:.1f}, {r['training']:.1f}, {o:.1f}, "
                  f"{'-' if r['launch'] is None else int(r['launch'])}"
                  for r, o in zip(rows, extra)))
        print(f"{mode}: outside training per trial: mean {results[mode][0]:.1f} s, "
              f"trials 2..: {results[mode][1]:.1f} s", flush=True)
    if args.dry_run:
        return 0
    found = anchors()
    for name, seconds in found.items():
        print(f"anchor: empty {name} of 2: {seconds['cold']:.1f} s cold, "
              f"{seconds['warm']:.1f} s warm")
    from _rows import write

    write(args.json, table_rows(args, results, found, per_trial))
    (warm_all, warm_later), (cold_all, cold_later) = results["warm"], results["cold"]
    print(f"ratio warm / cold, outside training per trial: all trials "
          f"{warm_all / cold_all:.2f} ({warm_all:.1f} / {cold_all:.1f} s), trials 2.. "
          f"{warm_later / cold_later:.2f} ({warm_later:.1f} / {cold_later:.1f} s)")
    met = warm_later <= TARGET_SECONDS
    print(f"target: at most {TARGET_SECONDS:g} s per trial after the first: "
          f"{'met' if met else 'not met'} ({warm_later:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
