"""Candidates evaluated in a fixed wall-clock budget: ASHA against FIFO on Fashion-MNIST, 2 cores.

    .venv/bin/python bench/asha_candidates.py [--minutes 10] [--algorithm random] [--dry-run]
                                              [--json PATH]

Two tunes of conf/jobs/fashion_tune.yaml (conf/spaces/mlp.yaml), run one after the other, never
side by side, each with the same search budget (search.timeout_minutes=--minutes), the same
algorithm and seed, search.trial_epochs=20, search.max_trials=500, no retrain and no report:

    fifo    search.scheduler=fifo: every candidate trains its 20 epochs
    asha    search.scheduler=asha, search.pruning.min_epochs=2, max_epochs=20,
            reduction_factor=3: rungs at 2, 6 and 18 epochs; a candidate goes on past a rung
            only when it is in the top third of those recorded there

Target: ASHA evaluates at least 2.5x as many candidates (finished trials, pruned ones
included, plus failed ones) as FIFO. The job's own early stopping (training.early_stopping)
and search.stop_after_no_improvement are off in both runs, so the only thing that ends a trial
before its 20 epochs is the scheduler (--keep-early-stopping leaves the job's on). Counts come
from each run's <search.output_dir>/<search.name>/summary.json; a key a summary lacks prints
as n/a. The dataset is prepared into data/fashion-mnist when missing; each run's stderr goes to
bench/out/<search name>.log.

Also: the ratio epochs alone would allow (FIFO's epochs per candidate ÷ ASHA's; the anchor of
the candidates row) and the per-trial fixed cost, from solving the two runs' slot-seconds
(parallelism x search seconds = candidates x per-trial + epochs x per-epoch) for the per-trial
and the per-epoch cost (an upper bound: trials cut off at the timeout are in the slot time).
``--json PATH`` writes the rows bench/table.py prints (bench/_rows.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 2.5
EXPERIMENT = "bench-asha"
SCHEDULERS = ("fifo", "asha")


def command(scheduler: str, args: argparse.Namespace, stamp: str) -> tuple[str, list[str]]:
    """The search's name and the ``sparkdl-tune tune`` command of one run."""
    exe = os.path.join(os.path.dirname(sys.executable), "sparkdl-tune")
    name = f"bench-asha-{scheduler}-{args.algorithm}-{stamp}"
    out = os.path.join(ROOT, "bench", "out")
    cmd = [exe, "tune", "conf/jobs/fashion_tune.yaml", f"search.name={name}",
           f"search.algorithm={args.algorithm}", f"search.seed={args.seed}",
           f"search.scheduler={scheduler}", "search.max_trials=500",
           f"search.timeout_minutes={args.minutes:g}", f"search.trial_epochs={args.epochs}",
           "search.stop_after_no_improvement=null", "search.retrain=false",
           "search.report=false", f"search.output_dir={out}",
           f"mlflow.experiment={EXPERIMENT}", "mlflow.registered_model_name=null",
           "spark.master=local[2]", "spark.conf.spark.ui.enabled=false"]
    if scheduler == "asha":
        cmd += [f"search.pruning.min_epochs={args.min_epochs}",
                f"search.pruning.max_epochs={args.epochs}",
                f"search.pruning.reduction_factor={args.reduction_factor:g}"]
    if not args.keep_early_stopping:
        cmd.append("training.early_stopping.enabled=false")
    return name, cmd


def run(scheduler: str, name: str, cmd: list[str], minutes: float) -> dict:
    out = os.path.join(ROOT, "bench", "out")
    started = time.monotonic()
    try:
        with open(os.path.join(out, f"{name}.log"), "w") as log:
            # generous: start-up, data checks and the trials running when the budget ends
            proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
                                  timeout=minutes * 60 * 2 + 600)
    except subprocess.TimeoutExpired:
        return {"scheduler": scheduler, "error": "timed out", "wall": time.monotonic() - started}
    wall = time.monotonic() - started
    if proc.returncode != 0:
        return {"scheduler": scheduler, "error": f"exit {proc.returncode}", "wall": wall,
                "log": os.path.join(out, f"{name}.log")}
    with open(os.path.join(out, name, "summary.json")) as f:
        summary = json.load(f)
    metric = summary.get("metric")
    trials, failed = summary.get("trials"), summary.get("failed")
    candidates = trials + failed if trials is not None and failed is not None else None
    spent = summary.get("epochs_spent")
    return {"scheduler": scheduler, "wall": wall, "search_seconds": summary.get("wall_seconds"),
            "candidates": candidates, "trials": trials, "failed": failed,
            "pruned": summary.get("pruned"), "epochs_spent": spent,
            "epochs_per_candidate": spent / candidates if spent is not None and candidates
            else None,
            "metric": metric, "best": summary.get(f"best_{metric}") if metric else None,
            "stopped_early": summary.get("stopped_early")}


def fixed_cost(rows: list[dict], slots: int = 2) -> tuple[float, float] | None:
    """Per-trial and per-epoch seconds solved from the two runs' slot-seconds, or None."""
    try:
        (c1, e1, s1), (c2, e2, s2) = [(r["candidates"], r["epochs_spent"],
                                       slots * r["search_seconds"]) for r in rows]
    except (KeyError, TypeError, ValueError):
        return None
    det = c1 * e2 - c2 * e1
    if not det:
        return None
    per_trial, per_epoch = (s1 * e2 - s2 * e1) / det, (c1 * s2 - c2 * s1) / det
    # too few candidates (a short budget on a loaded machine) give no fit worth printing
    return (per_trial, per_epoch) if per_trial >= 0 and per_epoch > 0 else None


def table_rows(rows: list[dict], args: argparse.Namespace) -> list[dict]:
    """Candidates asha ÷ fifo against what epochs allow, and the per-trial fixed cost."""
    from _rows import row

    by = {r["scheduler"]: r for r in rows}
    fifo, asha = by.get("fifo", {}), by.get("asha", {})
    ratio = (asha["candidates"] / fifo["candidates"]
             if fifo.get("candidates") and asha.get("candidates") is not None else None)
    allow = (fifo["epochs_per_candidate"] / asha["epochs_per_candidate"]
             if fifo.get("epochs_per_candidate") and asha.get("epochs_per_candidate") else None)
    cost = fixed_cost([fifo, asha])
    failed = "; ".join(f"{r['scheduler']}: {r['error']}" for r in rows if "error" in r)
    label = f"{args.minutes:g} min each, {args.epochs} epochs per trial"
    return [
        row(f"ASHA ÷ FIFO candidates in the same budget ({label})", ratio, f">= {TARGET}",
            f"epochs alone allow {allow:.2f}x" if allow else "n/a", allow,
            failed or (f"per-trial fixed cost {cost[0]:.1f} s against {cost[1]:.1f} s per epoch"
                       if cost else "n/a"), unit="x"),
        row(f"ASHA per-trial fixed cost (the two runs' fit, {label})",
            cost[0] if cost else None, "<= 0.5 s",
            f"per epoch {cost[1]:.1f} s" if cost else "n/a (no fit: too few candidates)",
            cost[1] if cost else None,
            failed or "an upper bound: trials cut off at the timeout count in the slot time; "
            "the rest is each trial's task, model, readers and test evaluation", unit="s"),
    ]


def fmt(value, spec: str = "") -> str:
    return "n/a" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="search budget of each run (search.timeout_minutes)")
    parser.add_argument("--algorithm", default="random",
                        choices=["tpe", "random", "anneal", "grid", "genetic"])
    parser.add_argument("--seed", type=int, default=42, help="search.seed of both runs")
    parser.add_argument("--epochs", type=int, default=20,
                        help="search.trial_epochs, and ASHA's search.pruning.max_epochs")
    parser.add_argument("--min-epochs", type=int, default=2, help="search.pruning.min_epochs")
    parser.add_argument("--reduction-factor", type=float, default=3.0,
                        help="search.pruning.reduction_factor")
    parser.add_argument("--keep-early-stopping", action="store_true",
                        help="leave the job's training.early_stopping on in both runs")
    parser.add_argument("--json", help="write the table's rows here (bench/table.py)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the two commands (run in the repository root) and exit")
    args = parser.parse_args()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs = [(scheduler, *command(scheduler, args, stamp)) for scheduler in SCHEDULERS]
    if args.dry_run:
        if not os.path.isfile(os.path.join(ROOT, "data/fashion-mnist/manifest.json")):
            print("# data/fashion-mnist is missing: a real run prepares it first")
        print(f"# in {ROOT}, one after the other:")
        for _, _, cmd in runs:
            print(shlex.join(cmd))
        return
    os.makedirs(os.path.join(ROOT, "bench", "out"), exist_ok=True)
    if not os.path.isfile(os.path.join(ROOT, "data/fashion-mnist/manifest.json")):
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "sparkdl-tune"),
                        "prepare", "fashion-mnist", "--out", "data/fashion-mnist"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    rows = []
    for scheduler, name, cmd in runs:  # one after the other: they share the 2 cores
        r = run(scheduler, name, cmd, args.minutes)
        rows.append(r)
        print(json.dumps(r, default=str), flush=True)
    metric = next((r["metric"] for r in rows if r.get("metric")), "metric")
    print(f"\n{'scheduler':<9} {'candidates':>10} {'pruned':>6} {'epochs':>6} "
          f"{'ep/cand':>7} {'best ' + metric:>16} {'wall min':>8}  "
          f"{args.algorithm}, seed {args.seed}, {args.minutes:g} min each")
    for r in rows:
        if "error" in r:
            print(f"{r['scheduler']:<9} {r['error']}  (wall {r['wall'] / 60:.1f} min)")
            continue
        print(f"{r['scheduler']:<9} {fmt(r['candidates']):>10} {fmt(r['pruned']):>6} "
              f"{fmt(r['epochs_spent']):>6} {fmt(r['epochs_per_candidate'], '.1f'):>7} "
              f"{fmt(r['best'], '.4f'):>16} {r['wall'] / 60:>8.1f}")
    by = {r["scheduler"]: r.get("candidates") for r in rows}
    if by.get("fifo") and by.get("asha") is not None:
        ratio = by["asha"] / by["fifo"]
        verdict = "met" if ratio >= TARGET else "missed"
        print(f"\ncandidates asha/fifo: {ratio:.2f}x  target {TARGET}x {verdict}")
    else:
        print(f"\ncandidates asha/fifo: n/a  target {TARGET}x n/a (a run failed or its "
              "summary lacks trials/failed)")
    cost = fixed_cost(rows)
    if cost:
        print(f"fit of the two runs: {cost[0]:.1f} s per trial, {cost[1]:.1f} s per epoch")
    from _rows import write

    write(args.json, table_rows(rows, args))


if __name__ == "__main__":
    main()
