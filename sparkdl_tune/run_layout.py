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
TAG_DEFINITION = "sparkdl_tune.definition"  # see sparkdl_tune.definition
TAG_FINAL = "sparkdl_tune.final_run_id"  # set once finished ("none": no retrain; "": not yet)

# on a trial run
TAG_TRIAL = "sparkdl_tune.trial"  # 0-based trial number
TAG_VALS = "sparkdl_tune.vals"  # the hyperopt vals (JSON): how a trial is decoded on resume
TAG_LOSS = "sparkdl_tune.loss"  # hyperopt's loss ("" when failed)
TAG_START = "sparkdl_tune.start"  # epoch seconds
TAG_WHERE = "sparkdl_tune.where"  # host:working directory of the Spark task
TAG_STATUS = "sparkdl_tune.status"  # running | finished | pruned | failed | cancelled
TAG_PRUNED = "sparkdl_tune.pruned"  # pruned: "epoch N: why"
TAG_RUNG = "sparkdl_tune.rung"  # the highest scheduler rung (epochs) the trial reached
TAG_CURVE = "sparkdl_tune.curve"  # the search metric after each epoch (JSON): the rung table

# on any run that failed
TAG_FAILURE = "failure_reason"
