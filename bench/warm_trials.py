"""Warm executors against SparkTrials: training time ÷ slot time of the same small search.

    .venv/bin/python bench/warm_trials.py [--dataset DIR] [--trials 8] [--epochs 3]
                                          [--parallelism 2] [--rows 40000] [--features 64]
                                          [--json PATH]

Two searches of the same space, algorithm (random), seed, budget and epochs, in parallel mode
on local[2], one per ``search.runner`` (``sparktrials``, then ``executors``), each in its own
process (a fresh Spark, fresh Python workers), never side by side; no retrain, no report, no
early stopping. For each:

    training   the sum over trials of their fit time: the last ``elapsed_seconds`` each trial
               reported (its epochs with their validation passes), read from MLflow
    slot time  parallelism x the wall time of the search's trial phase (hyperopt's run: from
               its first Spark job to its last result)
    ratio      training ÷ slot time: the share of the slots spent training

and the ratio of the two ratios (executors ÷ sparktrials). The anchor, measured in the same run
(its own process too): plain SparkTrials on local[2] running an empty objective that sleeps as
long as the sparktrials runner's mean trial trained, same trials and parallelism: its ratio is
the most a search through SparkTrials can get. ``--json PATH`` writes the rows bench/table.py
prints (bench/_rows.py). Without --dataset a synthetic
classification set (--rows x --features, 3 classes) is prepared once into
bench/out/warm-data. Searches write to bench/out/warm (MLflow: bench/out/warm/mlflow.db).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "out", "warm")
RUNNERS = ("sparktrials", "executors")
SPACE = {"training.learning_rate": {"loguniform": [1e-3, 3e-2]},
         "model.units": {"choice": [[64], [128, 64]]}}


def overrides(args: argparse.Namespace, runner: str, stamp: str) -> list[str]:
    values = {
        "data.path": args.dataset, "search.name": f"warm-{runner}-{stamp}",
        "search.space": json.dumps(SPACE), "search.space_file": "null",
        "search.algorithm": "random", "search.seed": 7, "search.max_trials": args.trials,
        "search.execution_mode": "parallel", "search.parallelism": args.parallelism,
        "search.runner": runner, "search.trial_epochs": args.epochs,
        "search.timeout_minutes": "null", "search.stop_after_no_improvement": "null",
        "search.retrain": "false", "search.report": "false", "search.output_dir": OUT,
        "training.epochs": args.epochs, "training.batch_size": 128,
        "training.early_stopping.enabled": "false", "model.task": "classification",
        "mlflow.tracking_uri": f"sqlite:///{OUT}/mlflow.db", "mlflow.experiment": "bench-warm",
        "mlflow.registered_model_name": "null", "spark.master": "local[2]",
        "spark.conf.spark.ui.enabled": "false"}
    return [f"{k}={v}" for k, v in values.items()]


def child(args: argparse.Namespace) -> None:
    """One search in this process; its figures as JSON on the last line of stdout."""
    from sparkdl_tune.config.loader import load_config
    from sparkdl_tune.search.engines import hyperopt as engine
    from sparkdl_tune.search.tuner import tune

    timed: dict[str, float] = {}
    run = engine.run

    def timed_run(*a, **kw):
        started = time.monotonic()
        try:
            return run(*a, **kw)
        finally:
            timed["search"] = time.monotonic() - started

    engine.run = timed_run
    cfg = load_config(None, overrides=overrides(args, args.child, args.stamp))
    summary = tune(cfg)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=cfg.mlflow.tracking_uri)
    exp = client.get_experiment_by_name(cfg.mlflow.experiment)
    runs = client.search_runs([exp.experiment_id],
                              f"tags.`mlflow.parentRunId` = '{summary['parent_run_id']}' and "
                              "tags.`sparkdl_tune.kind` = 'trial'")
    training = []
    for r in runs:
        steps = client.get_metric_history(r.info.run_id, "elapsed_seconds")
        training.append(max((s.value for s in steps), default=0.0))
    slot = args.parallelism * timed["search"]
    print(json.dumps({"runner": args.child, "trials": summary["trials"],
                      "failed": summary["failed"], "search_seconds": timed["search"],
                      "training_seconds": sum(training), "slot_seconds": slot,
                      "trial_seconds": sum(r.data.metrics.get("trial_seconds", 0.0)
                                           for r in runs),
                      "sources": sorted(r.data.tags.get("sparkdl_tune.data_source", "-")
                                        for r in runs),
                      "ratio": sum(training) / slot if slot else None}))


def child_anchor(args: argparse.Namespace) -> None:
    """Plain SparkTrials, an objective that only sleeps: its training ÷ slot time."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from hyperopt import SparkTrials, fmin, hp, rand
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .getOrCreate())
    sleep = args.sleep

    def objective(x):
        import time as t

        t.sleep(sleep)
        return x

    trials = SparkTrials(parallelism=args.parallelism, spark_session=spark)
    started = time.monotonic()
    fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=args.trials,
         trials=trials, show_progressbar=False)
    wall = time.monotonic() - started
    print(json.dumps({"runner": "anchor", "sleep": sleep, "search_seconds": wall,
                      "ratio": args.trials * sleep / (args.parallelism * wall)}))


def rows(args: argparse.Namespace, results: dict, anchor: dict | None) -> list[dict]:
    """The table's rows: each runner's training ÷ slot time against the anchor's."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _rows import row

    value = anchor["ratio"] if anchor else None
    text = (f"plain SparkTrials, empty {anchor['sleep']:.1f}-s objective: {value:.2f}"
            if anchor else "n/a (anchor failed)")
    out = []
    for runner, r in results.items():
        inside = r["trial_seconds"] - r["training_seconds"]
        between = r["slot_seconds"] - r["trial_seconds"]
        per_trial = (r["slot_seconds"] - r["training_seconds"]) / max(r["trials"], 1)
        out.append(row(
            f"parallel trials ({args.parallelism} at a time, {args.trials} x {args.epochs} "
            f"epochs), training ÷ slot time, runner {runner}", r["ratio"], ">= 0.80", text,
            value, f"{1 - r['ratio']:.0%} of slot time outside training, {per_trial:.1f} s "
            f"per trial: {inside:.1f} s inside the trials (model, test evaluation, weights), "
            f"{between:.1f} s between them (task launch, worker start, next point)"))
    return out


def prepare(args: argparse.Namespace) -> None:
    if os.path.isfile(os.path.join(args.dataset, "manifest.json")):
        return
    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    subprocess.run([exe, "prepare", "synthetic-classification", "--out", args.dataset,
                    "--rows", str(args.rows), "--features", str(args.features),
                    "--classes", "3", "spark.master=local[2]",
                    "spark.conf.spark.ui.enabled=false"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default=os.path.join(ROOT, "bench", "out", "warm-data"))
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--parallelism", type=int, default=2)
    p.add_argument("--rows", type=int, default=40000)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--json", help="write the table's rows here (bench/table.py)")
    p.add_argument("--sleep", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--child", choices=(*RUNNERS, "anchor"), help=argparse.SUPPRESS)
    p.add_argument("--stamp", default=time.strftime("%Y%m%d%H%M%S"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child == "anchor":
        child_anchor(args)
        return
    if args.child:
        child(args)
        return
    os.makedirs(OUT, exist_ok=True)
    prepare(args)
    results = {}
    for runner in RUNNERS:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", runner, "--stamp",
               args.stamp, "--dataset", args.dataset, "--trials", str(args.trials),
               "--epochs", str(args.epochs), "--parallelism", str(args.parallelism)]
        with open(os.path.join(OUT, f"{runner}-{args.stamp}.log"), "w") as log:
            proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
        if proc.returncode != 0:
            sys.exit(f"{runner}: exit {proc.returncode}; see {log.name}")
        results[runner] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{args.trials} trials of {args.epochs} epochs, parallelism {args.parallelism}, "
          f"data {args.dataset}")
    print("| runner | trials (failed) | search wall s | slot s | training s | trial s "
          "| training ÷ slot | data sources |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for runner, r in results.items():
        sources = ", ".join(f"{s} {r['sources'].count(s)}" for s in sorted(set(r["sources"])))
        print(f"| {runner} | {r['trials']} ({r['failed']}) | {r['search_seconds']:.1f} | "
              f"{r['slot_seconds']:.1f} | {r['training_seconds']:.1f} | "
              f"{r['trial_seconds']:.1f} | {r['ratio']:.2f} | {sources} |")
    a, b = results["sparktrials"]["ratio"], results["executors"]["ratio"]
    print(f"executors ÷ sparktrials (training ÷ slot time): {b / a:.2f}x")
    sleep = results["sparktrials"]["training_seconds"] / max(results["sparktrials"]["trials"], 1)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "anchor", "--trials",
           str(args.trials), "--parallelism", str(args.parallelism), "--sleep", f"{sleep:.2f}"]
    with open(os.path.join(OUT, f"anchor-{args.stamp}.log"), "w") as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    anchor = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    print(f"anchor, plain SparkTrials, empty {sleep:.1f}-s objective: training ÷ slot time "
          + (f"{anchor['ratio']:.2f}" if anchor else f"n/a (exit {proc.returncode})"))
    from _rows import write

    write(args.json, rows(args, results, anchor))


if __name__ == "__main__":
    main()
