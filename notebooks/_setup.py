# Databricks notebook source
# MAGIC %md
# MAGIC ## Shared setup of the sparkdl_tune notebooks
# MAGIC
# MAGIC The other notebooks run this one first with `%run ./_setup`. It defines:
# MAGIC
# MAGIC - `param(name, default)`: a notebook parameter. On Databricks a text widget (set from the
# MAGIC   widget bar or a job's parameters); elsewhere the environment variable
# MAGIC   `SPARKDL_NB_<NAME>` when set, else `default`.
# MAGIC - `sdt` (the `sparkdl_tune` package), `spark` (the notebook's session, or the active or a
# MAGIC   new local one off Databricks) and `display` (`print` off Databricks).
# MAGIC - The parameters every notebook shares: `workdir` (data, search outputs and the Petastorm
# MAGIC   cache live under it), `conf_dir` and `env` (the YAML layers; `env` empty by default:
# MAGIC   no overlay, and one named must exist), and the MLflow store
# MAGIC   (`tracking_uri`, `experiment`), gathered in `common_overrides`.

# COMMAND ----------

import os
import shlex

import sparkdl_tune as sdt

try:
    dbutils  # noqa: F821 -- defined by Databricks
    on_databricks = True
except NameError:
    dbutils = None
    on_databricks = False
    display = print


def param(name, default):
    """The notebook parameter ``name`` as a string (see the cell above)."""
    if dbutils is not None:
        dbutils.widgets.text(name, str(default))
        return dbutils.widgets.get(name)
    return os.environ.get(f"SPARKDL_NB_{name.upper()}", str(default))


def flag(text):
    return text.strip().lower() in ("1", "true", "yes", "on")


def overrides_from(text):
    """``key=value`` config overrides separated by spaces or new lines (quote values with
    spaces), e.g. ``training.batch_size=64 model.units=[64,32]``."""
    return shlex.split(text)


# COMMAND ----------

try:
    spark  # noqa: F821 -- defined by Databricks
except NameError:
    spark = sdt.get_spark()  # the active session when there is one, else local[*]

# Databricks runs a notebook in its own folder; elsewhere we expect the repository root.
conf_dir = param("conf_dir", next((d for d in ("conf", "../conf") if os.path.isdir(d)), "conf"))
# The overlay folder under conf_dir (e.g. prod): empty for none, on Databricks too, since what
# differs there (cache, MLflow store) are the parameters below. A name that is not a folder
# there is an error, never skipped.
env = param("env", "")
workdir = param("workdir", "/Volumes/main/default/sparkdl_tune" if on_databricks else ".")
# Petastorm's cache must be readable by every executor: DBFS's local mount on Databricks.
cache_url = param("cache_url", "file:///dbfs/tmp/sparkdl_tune/petastorm" if on_databricks
                  else f"{workdir}/.cache/petastorm")
tracking_uri = param("tracking_uri", "databricks" if on_databricks else "")
experiment = param("experiment", "/Shared/sparkdl-tune" if on_databricks else "")

common_overrides = [f"data.cache_url={cache_url}"]
if tracking_uri:  # empty: mlflow.tracking_uri from the YAML, else MLFLOW_TRACKING_URI
    common_overrides.append(f"mlflow.tracking_uri={tracking_uri}")
if experiment:
    common_overrides.append(f"mlflow.experiment={experiment}")
overlay = f"env {env}" if env else "no env overlay"
print(f"sparkdl_tune {sdt.__version__}; Spark {spark.version} at {spark.sparkContext.master}; "
      f"conf {conf_dir} ({overlay}); workdir {workdir}")
