"""The anchor for the 30-minute search-quality bench (issue 23, acceptance 3): what a Databricks
user writes by hand with MLflow 3's ``mlflow.pyspark.optuna.study.MlflowSparkStudy``, on the
same Fashion-MNIST MLP, machine and wall-clock budget as ``bench/tune_quality.py``.

    .venv/bin/python bench/mlflow_spark_study.py --seed 1          # 30 minutes, as tune_quality
    .venv/bin/python bench/mlflow_spark_study.py --minutes 4 --final-minutes 1 --overhead-minutes 1

The same as ours:
- the space of conf/spaces/mlp.yaml (layer shapes, activation, dropout, L2, optimizer, learning
  rate, batch size), the same network (glorot-uniform Dense layers with L2 on every kernel,
  dropout after each hidden layer, softmax output, sparse categorical cross-entropy), a cosine
  learning rate annealed to 0 over the run's epochs, early stopping after 2 epochs without a
  better val_accuracy (the trial scores its best epoch), as in conf/jobs/fashion_tune.yaml;
- trials train epoch by epoch up to ``--max-epochs`` (20) and may be stopped from epoch
  ``--min-epochs`` (2) on, 2 trials at a time on ``local[2]``, 1 inter- and 1 intra-op
  TensorFlow thread per trial;
- the budget split: search timeout = minutes - final - overhead; the best parameters are
  retrained on train+validation for the epochs that fit 90% of ``--final-minutes`` at the best
  trial's measured samples/s (times sqrt(2) for the retrain's 2 threads against the trial's 1),
  at most ``--final-epochs`` (30) and stopped at the limit, then evaluated once on test.

What differs from ours (the point of an anchor: Optuna's own Spark integration, as documented):
- Optuna's ``TPESampler(seed=...)`` with its defaults (independent, 10 random start-up trials)
  and ``MedianPruner(n_warmup_steps=min_epochs)`` (a trial is stopped when its val_accuracy is
  below the median of earlier trials at the same epoch), not multivariate TPE + ASHA rungs;
- ``MlflowSparkStudy.optimize(n_jobs=2)`` runs one long Spark task per slot, each loading the
  study from ``MlflowStorage`` (the MLflow experiment is the study's store) and asking/telling
  trials in a loop; the sampler is reseeded per task, so a run is not reproducible from the
  seed;
- Optuna checks its timeout only between trials, counted from each Spark task's own start;
  here a callback (:func:`stop_at`) ends each task's loop at the search deadline, and the
  objective stops a trial (told as pruned, counted as cancelled) at the end of the epoch under
  way once the deadline has passed, where our timeout cancels running trials at once; so the
  retrain keeps its minutes, less up to one epoch;
- a trial's samples/s (the retrain plan's input) is timed over ``fit`` with its validation pass;
- each Python worker reads the prepared Parquet with pyarrow into numpy once (cached in the
  worker) and trains with ``model.fit`` on numpy arrays, no Petastorm/Arrow reader;
- the retrain runs in the driver process, not as a Spark job.

Writes bench/out/<name>.json and prints one row like tune_quality.py's: ``trials`` counts the
trials that finished or were pruned (failed ones included, cancelled ones not: as our summary
counts them); ``pruned`` those the median pruner stopped; ``cancelled`` those stopped at the
search deadline (told to Optuna as pruned).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 0.905
UNITS = {"256-128": (256, 128), "512-256": (512, 256), "512-256-128": (512, 256, 128),
         "1024-512": (1024, 512)}
BUDGET_SHARE = 0.9  # of --final-minutes planned for epochs, as sparkdl_tune/search/final.py


def suggest(trial) -> dict:
    """The space of conf/spaces/mlp.yaml in Optuna's define-by-run calls."""
    return {
        "units": trial.suggest_categorical("units", list(UNITS)),
        "activation": trial.suggest_categorical("activation",
                                                ["relu", "elu", "selu", "gelu", "swish"]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "l2": trial.suggest_float("l2", 1.0e-6, 1.0e-3, log=True),
        "optimizer": trial.suggest_categorical("optimizer", ["adam", "nadam", "rmsprop"]),
        "learning_rate": trial.suggest_float("learning_rate", 1.0e-4, 3.0e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
    }


def load_split(path: str):
    """One prepared split (``features`` array<float>, ``label`` int) as numpy arrays."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["features", "label"])
    features = table.column("features").combine_chunks()
    x = np.asarray(features.values.to_numpy(zero_copy_only=False), dtype="float32")
    return x.reshape(len(table), -1), table.column("label").to_numpy().astype("int64")


def worker_data(data_dir: str, threads: int = 1) -> dict:
    """Train and validation arrays, read once per Python worker; TensorFlow's threads set
    before its first operation. Kept in a module of ``sys.modules``: this script's own globals
    travel with the pickled objective, so they would start empty in every task."""
    import types

    cache = sys.modules.setdefault("_mlflow_spark_study_cache",
                                   types.ModuleType("_mlflow_spark_study_cache"))
    if not hasattr(cache, "data"):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        cache.data = {split: load_split(os.path.join(data_dir, split))
                      for split in ("train", "validation")}
    return cache.data


def build(params: dict, input_dim: int, total_steps: int, seed: int):
    """The MLP as sparkdl_tune builds it for this space, compiled with a cosine schedule."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    reg = tf.keras.regularizers.L2(params["l2"])
    inputs = tf.keras.Input(shape=(input_dim,), name="features", dtype="float32")
    x = inputs
    for width in UNITS[params["units"]]:
        x = tf.keras.layers.Dense(width, activation=params["activation"],
                                  kernel_regularizer=reg)(x)
        if params["dropout"] > 0:
            x = tf.keras.layers.Dropout(params["dropout"])(x)
    outputs = tf.keras.layers.Dense(10, activation="softmax", kernel_regularizer=reg)(x)
    net = tf.keras.Model(inputs, outputs)
    rate = tf.keras.optimizers.schedules.CosineDecay(params["learning_rate"], total_steps)
    optimizer = {"adam": tf.keras.optimizers.Adam, "nadam": tf.keras.optimizers.Nadam,
                 "rmsprop": tf.keras.optimizers.RMSprop}[params["optimizer"]]
    net.compile(optimizer=optimizer(learning_rate=rate),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return net


def make_objective(data_dir: str, max_epochs: int, patience: int, deadline: float, seed: int):
    """The objective each Spark task runs: train epoch by epoch, report, prune."""

    def objective(trial) -> float:
        import math

        import optuna

        params = suggest(trial)
        if time.time() >= deadline:  # asked after the deadline (a task's clock starts late)
            trial.set_user_attr("cancelled", True)
            raise optuna.TrialPruned("search timeout")
        (x, y), (xv, yv) = (worker_data(data_dir)[s] for s in ("train", "validation"))
        steps = math.ceil(len(x) / params["batch_size"])
        net = build(params, x.shape[1], steps * max_epochs, seed + trial.number)
        best, since, seconds = 0.0, 0, 0.0
        for epoch in range(max_epochs):
            started = time.monotonic()
            history = net.fit(x, y, batch_size=params["batch_size"], epochs=epoch + 1,
                              initial_epoch=epoch, validation_data=(xv, yv), verbose=0)
            seconds += time.monotonic() - started
            accuracy = float(history.history["val_accuracy"][-1])
            trial.set_user_attr("epochs", epoch + 1)
            trial.set_user_attr("samples_per_second", (epoch + 1) * len(x) / seconds)
            best, since = (accuracy, 0) if accuracy > best else (best, since + 1)
            trial.report(accuracy, epoch + 1)
            if time.time() >= deadline:  # told as pruned, counted apart as cancelled
                trial.set_user_attr("cancelled", True)
                raise optuna.TrialPruned("search timeout")
            if trial.should_prune():
                raise optuna.TrialPruned()
            if since >= patience:
                break
        return best

    return objective


def stop_at(deadline: float):
    """An Optuna callback that ends a task's trial loop once the search deadline has passed:
    ``optimize``'s timeout counts from each Spark task's own start, seconds after the driver's.
    ``Study.stop()`` refuses outside ``Study.optimize`` (the executors run MLflow's own loop),
    so it sets the flag that loop checks."""

    def stop(study, trial) -> None:
        if time.time() >= deadline:
            study._stop_flag = True

    return stop


def final_epochs(measured: float, rows: int, minutes: float, epochs: int) -> int:
    """Epochs of the retrain that fit ``minutes`` at the best trial's ``measured`` samples/s
    (1 thread; the retrain has 2), as ``sparkdl_tune/search/final.py`` plans them."""
    if measured <= 0:
        return epochs
    epoch_seconds = rows / (measured * 2 ** 0.5)
    return max(1, min(epochs, int(minutes * 60 * BUDGET_SHARE // epoch_seconds)))


def retrain(params: dict, data_dir: str, epochs: int, minutes: float, seed: int) -> dict:
    """Best parameters on train+validation for ``epochs`` (stopped at ``minutes``), then test."""
    import math

    import numpy as np
    import tensorflow as tf

    (x, y), (xv, yv) = (load_split(os.path.join(data_dir, s)) for s in ("train", "validation"))
    x, y = np.concatenate([x, xv]), np.concatenate([y, yv])
    xt, yt = load_split(os.path.join(data_dir, "test"))
    net = build(params, x.shape[1], math.ceil(len(x) / params["batch_size"]) * epochs, seed)
    limit = time.monotonic() + minutes * 60

    class Limit(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = time.monotonic() >= limit

    history = net.fit(x, y, batch_size=params["batch_size"], epochs=epochs, verbose=0,
                      callbacks=[Limit()])
    _, accuracy = net.evaluate(xt, yt, batch_size=1024, verbose=0)
    return {"epochs": len(history.history["loss"]), "test_accuracy": float(accuracy)}


def search(args, name: str, deadline: float):
    """The hand-written MlflowSparkStudy search; returns the study."""
    import mlflow
    import optuna
    from mlflow.optuna.storage import MlflowStorage
    from mlflow.pyspark.optuna.study import MlflowSparkStudy
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # local workers: this venv
    SparkSession.builder.master("local[2]").appName(name) \
        .config("spark.ui.enabled", "false").getOrCreate()
    mlflow.set_tracking_uri(args.tracking_uri)
    experiment_id = mlflow.set_experiment("bench-mlflow-spark-study").experiment_id
    study = MlflowSparkStudy(
        name, MlflowStorage(experiment_id=experiment_id),
        sampler=optuna.samplers.TPESampler(seed=args.seed),
        pruner=optuna.pruners.MedianPruner(n_warmup_steps=args.min_epochs),
        direction="maximize")
    objective = make_objective(os.path.join(ROOT, args.data), args.max_epochs, args.patience,
                               deadline, args.seed)
    study.optimize(objective, n_trials=args.max_trials, timeout=deadline - time.time(),
                   n_jobs=2, callbacks=[stop_at(deadline)])
    return study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--final-minutes", type=float, default=6.0)
    parser.add_argument("--overhead-minutes", type=float, default=1.5)
    parser.add_argument("--final-epochs", type=int, default=30)
    parser.add_argument("--min-epochs", type=int, default=2,
                        help="MedianPruner's n_warmup_steps: no trial is stopped before this")
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--max-trials", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data", default="data/fashion-mnist")
    parser.add_argument("--tracking-uri",
                        default=f"sqlite:///{ROOT}/bench/out/mlflow-spark-study.db")
    args = parser.parse_args()
    started = time.monotonic()
    out = os.path.join(ROOT, "bench", "out")
    os.makedirs(out, exist_ok=True)
    if not os.path.isfile(os.path.join(ROOT, args.data, "manifest.json")):
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "sparkdl-tune"),
                        "prepare", "fashion-mnist", "--out", args.data],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    name = f"bench-mlflow-spark-study-s{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    search_minutes = args.minutes - args.final_minutes - args.overhead_minutes
    deadline = time.time() - (time.monotonic() - started) + search_minutes * 60
    study = search(args, name, deadline)
    search_wall = time.monotonic() - started

    from optuna.trial import TrialState

    trials = study.trials
    count = {s: sum(t.state == s for t in trials)
             for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    cancelled = sum(bool(t.user_attrs.get("cancelled")) for t in trials)
    best = study.best_trial
    rows = sum(len(load_split(os.path.join(ROOT, args.data, s))[1])
               for s in ("train", "validation"))
    epochs = final_epochs(best.user_attrs.get("samples_per_second", 0.0), rows,
                          args.final_minutes, args.final_epochs)
    final = retrain(best.params, os.path.join(ROOT, args.data), epochs, args.final_minutes,
                    args.seed)
    wall = time.monotonic() - started
    row = {"engine": "MlflowSparkStudy", "algorithm": "tpe", "scheduler": "median",
           "seed": args.seed, "name": name, "wall": wall, "search_wall": search_wall,
           "trials": len(trials) - cancelled, "complete": count[TrialState.COMPLETE],
           "pruned": count[TrialState.PRUNED] - cancelled, "cancelled": cancelled,
           "failed": count[TrialState.FAIL],
           "epochs_spent": sum(t.user_attrs.get("epochs", 0) for t in trials),
           "best_val": best.value, "final_epochs": final["epochs"],
           "test": final["test_accuracy"], "params": best.params}
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(row, f, indent=2)
    print(json.dumps(row), flush=True)
    in_time = wall <= args.minutes * 60
    verdict = "met" if row["test"] >= TARGET and in_time else "MISSED"
    print(f"\n{'anchor':<17} {'wall min':>8} {'trials':>6} {'pruned':>6} {'cancel':>6} "
          f"{'failed':>6} "
          f"{'best val':>8} {'final ep':>8} {'test acc':>8}  target {TARGET} in "
          f"{args.minutes:g} min")
    print(f"{'MlflowSparkStudy':<17} {wall / 60:>8.1f} {row['trials']:>6} {row['pruned']:>6} "
          f"{row['cancelled']:>6} {row['failed']:>6} {row['best_val']:>8.4f} "
          f"{row['final_epochs']:>8} {row['test']:>8.4f}  {verdict}"
          + ("" if in_time else " (over the time budget)"))


if __name__ == "__main__":
    main()
