"""How a search lives in MLflow: the tag names and run kinds, in one place.

A search is a parent run (``kind=search``) with one child run per trial (``kind=trial``) and
one for the retrained final model (``kind=final``). The tuner and the monitor write these tags;
resume, the rerun check and the report read them. No MLflow import: names only.
"""

KIND_SEARCH, KIND_TRIAL, KIND_FINAL = "search", "trial", "final"

TAG_KIND = "sparkdl_tune.kind"  # search | trial | final
TAG_SEARCH = "sparkdl_tune.search"  # the search's name, on every run of it

# on the parent run
TAG_ALGORITHM = "sparkdl_tune.algorithm"
TAG_EXECUTION_MODE = "sparkdl_tune.execution_mode"
TAG_DEFINITION = "sparkdl_tune.definition"  # see sparkdl_tune.search.definition
TAG_FINAL = "sparkdl_tune.final_run_id"  # set once finished ("none": no retrain; "": not yet)
# the current search.max_trials: the param keeps the first budget (MLflow params are immutable),
# this tag follows search.resume=extend
TAG_MAX_TRIALS = "sparkdl_tune.max_trials"

# on a trial run
TAG_TRIAL = "sparkdl_tune.trial"  # 0-based trial number
TAG_VALS = "sparkdl_tune.vals"  # the trial's vals (JSON): how a trial is decoded on resume
TAG_LOSS = "sparkdl_tune.loss"  # the loss the engine learned from ("" when failed)
TAG_START = "sparkdl_tune.start"  # epoch seconds
TAG_WHERE = "sparkdl_tune.where"  # host:working directory of the Spark task
TAG_STATUS = "sparkdl_tune.status"  # running | finished | pruned | failed | cancelled
TAG_PRUNED = "sparkdl_tune.pruned"  # pruned: "epoch N: why"
TAG_RUNG = "sparkdl_tune.rung"  # the highest scheduler rung (epochs) the trial reached
TAG_CURVE = "sparkdl_tune.curve"  # the search metric after each epoch (JSON): the rung table
TAG_DATA_SOURCE = "sparkdl_tune.data_source"  # runner executors: cache | parquet
TAG_FOLDS = "sparkdl_tune.folds"  # search.cv_folds: each fold's score, epochs, rows, times (JSON)

# on any run that failed
TAG_FAILURE = "failure_reason"

# the logged model's name in its run (runs:/<run id>/model)
MODEL_NAME = "model"


class TrialRun:
    """One trial run as MLflow holds it, read in one place for resume and for the report.

    ``status``: finished | pruned | failed | cancelled (KILLED: stopped by the search's own
    timeout or stop rule) | running (the search died while it ran). ``params`` are MLflow's
    strings; ``vals`` decode them exactly (see
    :meth:`sparkdl_tune.search.space.SearchSpace.decode`).
    """

    def __init__(self, run):
        import json

        info, tags, metrics = run.info, run.data.tags, run.data.metrics
        self.run_id = info.run_id
        self.number = int(tags.get(TAG_TRIAL, 0))
        self.ok = info.status == "FINISHED"
        pruned = tags.get(TAG_PRUNED, "") if self.ok else ""
        self.status = ("pruned" if pruned else "finished") if self.ok else {
            "KILLED": "cancelled", "RUNNING": "running"}.get(info.status, "failed")
        self.params = dict(run.data.params)
        self.vals = json.loads(tags[TAG_VALS]) if tags.get(TAG_VALS) else None
        loss = tags.get(TAG_LOSS)
        self.loss = float(loss) if self.ok and loss else None
        self.objective = metrics.get("objective") if self.ok else None
        self.failure = None if self.ok else tags.get(TAG_FAILURE, info.status)
        self.seconds = float(metrics.get("trial_seconds", 0.0))
        self.start = float(tags.get(TAG_START) or 0.0)
        self.epochs = int(metrics.get("epochs_run", 0))
        self.test = {k: v for k, v in metrics.items() if k.startswith("test_")}
        self.metrics = dict(metrics)
        self.pruned_epoch = int(pruned.split(":")[0].split()[-1]) if pruned else None
        self.pruned_reason = pruned.partition(": ")[2]
        self.curve = json.loads(tags.get(TAG_CURVE) or "[]")
        self.folds = json.loads(tags.get(TAG_FOLDS) or "[]")
        rung = tags.get(TAG_RUNG)
        self.rung = int(float(rung)) if rung else None
