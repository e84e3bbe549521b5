# Databricks notebook source
# MAGIC %md
# MAGIC # 2 · Tune hyper-parameters
# MAGIC
# MAGIC Runs a search from a YAML job (default `conf/jobs/fashion_tune.yaml`: the MLP space of
# MAGIC `conf/spaces/mlp.yaml`, TPE) with a small budget. Each trial is an MLflow child run of the
# MAGIC search's parent run; the best parameters land in
# MAGIC `<workdir>/out/tune/<search_name>/best_params.json`, which `03_train_and_register` reads.
# MAGIC Running the same `search_name` again resumes the search from MLflow.
# MAGIC
# MAGIC | parameter | meaning |
# MAGIC |---|---|
# MAGIC | `job` | job YAML with a `search:` section |
# MAGIC | `dataset` | a prepared dataset (`01_prepare`) |
# MAGIC | `search_name` | the search's name (its MLflow parent run) |
# MAGIC | `max_trials`, `trial_epochs` | budget: trials, and epochs per trial |
# MAGIC | `retrain` | `true`: also retrain the best on train+validation and register it here |
# MAGIC | `overrides` | more `key=value` config overrides, e.g. `search.algorithm=random` |

# COMMAND ----------

# MAGIC %run ./_setup

# COMMAND ----------

import json

import pandas as pd

job = param("job", f"{conf_dir}/jobs/fashion_tune.yaml")
dataset = param("dataset", f"{workdir}/data/fashion-mnist")
search_name = param("search_name", "fashion-mlp-notebook")
max_trials = param("max_trials", "6")
trial_epochs = param("trial_epochs", "2")
retrain = flag(param("retrain", "false"))
extra = overrides_from(param("overrides", ""))

cfg = sdt.load_config(conf_dir, env, files=[job], overrides=[
    f"data.path={dataset}",
    f"search.name={search_name}",
    f"search.max_trials={max_trials}",
    f"search.trial_epochs={trial_epochs}",
    f"search.output_dir={workdir}/out/tune",
    f"search.retrain={str(retrain).lower()}",
    *common_overrides,
    *extra,
])
s = cfg.search
print(f"search '{s.name}': {s.algorithm} over {s.space_file or 'search.space'}, "
      f"{s.max_trials} trials of {s.trial_epochs or cfg.training.epochs} epochs, "
      f"execution mode {s.execution_mode}")

# COMMAND ----------

summary = sdt.tune(cfg, spark)

# COMMAND ----------

# MAGIC %md
# MAGIC The summary (also in `summary.json` beside `best_params.json`) and the best parameters:

# COMMAND ----------

best_params_path = f"{s.output_dir}/{s.name}/best_params.json"
print(json.dumps(summary, indent=2, default=str))
best = summary.get("best_params", {})
display(pd.DataFrame({"parameter": list(best), "value": [str(v) for v in best.values()]}))
print(f"best parameters: {best_params_path}")

# COMMAND ----------

# MAGIC %md
# MAGIC The search's report (best so far, learning curves, time vs. test metric, parameter
# MAGIC importance, heat-maps), also logged to the parent MLflow run under `report/`. Redraw it
# MAGIC at any time, e.g. with other heat-map pairs:
# MAGIC `sdt.report(cfg.mlflow, search_name, out_dir, pairs=[("learning_rate", "dropout")])`.

# COMMAND ----------

report_html = summary.get("report")
if report_html and on_databricks:
    with open(report_html) as f:
        displayHTML(f.read())  # noqa: F821 -- defined by Databricks
else:
    print(f"report: {report_html}")
