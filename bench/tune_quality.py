"""Search quality at a fixed wall-clock budget: Fashion-MNIST MLP, 2 cores, each algorithm
given the same 30 minutes for search + final retrain; prints final test accuracy side by side.

    .venv/bin/python bench/tune_quality.py [--algorithms tpe random] [--minutes 30]
    .venv/bin/python bench/tune_quality.py --algorithms tpe --scheduler asha --seed 1
    .venv/bin/python bench/tune_quality.py --engine optuna --algorithms tpe --scheduler asha

``--engine`` picks ``search.engine`` (hyperopt, the default, or optuna); the printed rows and
table name it.

``--scheduler asha`` (or hyperband, median) stops poor trials early: trials train up to
``--max-epochs`` (default 20) and the first rung sits at ``--min-epochs`` (default 2), instead
of every trial training ``--trial-epochs``.

Uses conf/jobs/fashion_tune.yaml and conf/spaces/mlp.yaml; the dataset is prepared into
data/fashion-mnist when missing. Each run gets its own search name and MLflow experiment.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 0.895


def run(algorithm: str, minutes: float, final_minutes: float, overhead_minutes: float,
        final_epochs: int, trial_epochs: int, stamp: str, args=None) -> dict:
    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    scheduler = getattr(args, "scheduler", "fifo")
    engine = getattr(args, "engine", "hyperopt")
    name = f"bench-{engine}-{algorithm}-{scheduler}-s{getattr(args, 'seed', 42)}-{stamp}"
    out = os.path.join(ROOT, "bench", "out")
    cmd = [exe, "tune", "conf/jobs/fashion_tune.yaml", f"search.name={name}",
           f"search.engine={engine}", f"search.algorithm={algorithm}", "search.max_trials=500",
           f"search.timeout_minutes={minutes - final_minutes - overhead_minutes}",
           f"search.final_minutes={final_minutes}",
           "search.stop_after_no_improvement=null", f"search.trial_epochs={trial_epochs}",
           f"training.epochs={final_epochs}", f"search.output_dir={out}",
           "mlflow.experiment=bench-tune-quality", "mlflow.registered_model_name=null",
           "spark.master=local[2]", "spark.conf.spark.ui.enabled=false"]
    if args is not None:
        cmd.append(f"search.seed={args.seed}")
        if scheduler != "fifo":
            cmd += [f"search.scheduler={scheduler}",
                    f"search.pruning.min_epochs={args.min_epochs}",
                    f"search.pruning.max_epochs={args.max_epochs}"]
    started = time.monotonic()
    with open(os.path.join(out, f"{name}.log"), "w") as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        return {"engine": engine, "algorithm": algorithm, "error": f"exit {proc.returncode}",
                "wall": wall}
    with open(os.path.join(out, name, "summary.json")) as f:
        summary = json.load(f)
    return {"engine": engine, "algorithm": algorithm, "scheduler": scheduler,
            "seed": getattr(args, "seed", 42),
            "pruned": summary.get("pruned"), "epochs_spent": summary.get("epochs_spent"),
            "wall": wall, "trials": summary["trials"],
            "failed": summary["failed"], "best_val": summary["best_val_accuracy"],
            "test": summary["final"]["test_metrics"]["test_accuracy"],
            "final_epochs": summary["final"]["epochs"],
            "params": summary["best_params"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", default="hyperopt", choices=("hyperopt", "optuna"),
                        help="search.engine of every run")
    parser.add_argument("--algorithms", nargs="+", default=["tpe", "random"])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--final-minutes", type=float, default=6.0,
                        help="part of the budget for the final retrain (search.final_minutes)")
    parser.add_argument("--overhead-minutes", type=float, default=1.5,
                        help="part of the budget for start-up, data checks and the report")
    parser.add_argument("--final-epochs", type=int, default=30)
    parser.add_argument("--trial-epochs", type=int, default=8)
    parser.add_argument("--scheduler", default="fifo",
                        choices=("fifo", "asha", "hyperband", "median"))
    parser.add_argument("--min-epochs", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    os.makedirs(os.path.join(ROOT, "bench", "out"), exist_ok=True)
    if not os.path.isfile(os.path.join(ROOT, "data/fashion-mnist/manifest.json")):
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "sparkdl-tune"),
                        "prepare", "fashion-mnist", "--out", "data/fashion-mnist"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows = []
    for algorithm in args.algorithms:
        r = run(algorithm, args.minutes, args.final_minutes, args.overhead_minutes,
                args.final_epochs, args.trial_epochs, stamp, args)
        rows.append(r)
        print(json.dumps(r, default=str), flush=True)
    print(f"\n{'engine':<8} {'algorithm':<10} {'wall min':>8} {'trials':>6} {'failed':>6} "
          f"{'best val':>8} "
          f"{'final ep':>8} {'test acc':>8}  target {TARGET} in {args.minutes:g} min")
    for r in rows:
        if "error" in r:
            print(f"{r['engine']:<8} {r['algorithm']:<10} {r['wall'] / 60:>8.1f}  {r['error']}")
            continue
        in_time = r["wall"] <= args.minutes * 60
        verdict = "met" if r["test"] >= TARGET and in_time else "MISSED"
        print(f"{r['engine']:<8} {r['algorithm']:<10} {r['wall'] / 60:>8.1f} {r['trials']:>6} "
              f"{r['failed']:>6} "
              f"{r['best_val']:>8.4f} {r['final_epochs']:>8} {r['test']:>8.4f}  {verdict}"
              + ("" if in_time else " (over the time budget)"))


if __name__ == "__main__":
    main()
