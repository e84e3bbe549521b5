# Databricks notebook source
# MAGIC %md
# MAGIC # 3 · Train the best parameters and register the model
# MAGIC
# MAGIC Trains one model from a YAML job with the best parameters of a search (`02_tune`'s
# MAGIC `best_params.json`, another file, or a JSON object typed in), evaluates it on `test`, logs
# MAGIC it to MLflow with its signature and registers it under `model_name`. Then it loads the
# MAGIC registered version back and predicts a few `test` rows.
# MAGIC
# MAGIC | parameter | meaning |
# MAGIC |---|---|
# MAGIC | `job` | job YAML (default `conf/jobs/fashion_mlp.yaml`) |
# MAGIC | `dataset` | a prepared dataset (`01_prepare`) |
# MAGIC | `search_name` | whose `best_params.json` to read when `best_params` is empty |
# MAGIC | `best_params` | empty, a path to a JSON file, or a JSON object such as `{"model.units": [256, 128]}` |
# MAGIC | `epochs` | training epochs |
# MAGIC | `model_name` | registered model name (Unity Catalog: `catalog.schema.model`) |
# MAGIC | `predict_rows` | how many `test` rows to predict with the registered model |
# MAGIC | `overrides` | more `key=value` config overrides |
# MAGIC
# MAGIC The best parameters win over the job file and the overrides for the keys they name.

# COMMAND ----------

# MAGIC %run ./_setup

# COMMAND ----------

import json

import numpy as np
import pandas as pd

job = param("job", f"{conf_dir}/jobs/fashion_mlp.yaml")
dataset = param("dataset", f"{workdir}/data/fashion-mnist")
search_name = param("search_name", "fashion-mlp-notebook")
best_params_arg = param("best_params", "").strip()
epochs = param("epochs", "10")
model_name = param("model_name", "main.default.fashion_mlp" if on_databricks
                   else "fashion-mlp-notebook")
predict_rows = int(param("predict_rows", "5"))
extra = overrides_from(param("overrides", ""))

if best_params_arg.startswith("{"):
    best_params = json.loads(best_params_arg)
else:
    best_params_path = best_params_arg or f"{workdir}/out/tune/{search_name}/best_params.json"
    with open(best_params_path) as f:
        best_params = json.load(f)
display(pd.DataFrame({"parameter": list(best_params),
                      "value": [str(v) for v in best_params.values()]}))

# COMMAND ----------

cfg = sdt.load_config(conf_dir, env, files=[job], overrides=[
    f"data.path={dataset}",
    f"training.epochs={epochs}",
    f"mlflow.registered_model_name={model_name}",
    *common_overrides,
    *extra,
])
cfg = sdt.with_values(cfg, best_params, where="best parameters")
result = sdt.train(cfg, spark, run_name=f"{search_name}-best")
print(json.dumps(result, indent=2, default=str))

# COMMAND ----------

# MAGIC %md
# MAGIC The registered version, loaded back from the registry, on a few `test` rows:

# COMMAND ----------

model_uri = f"models:/{model_name}/{result['registered_version']}"
model = sdt.load_model(model_uri, cfg.mlflow)

layout = sdt.read_manifest(dataset).layout
columns = list(cfg.data.feature_columns or layout.features)  # the columns the model was fed
rows = sdt.read_split(spark, dataset, "test").limit(predict_rows).toPandas()
if layout.feature_kind == "array":
    x = np.stack(rows[columns[0]].to_numpy()).astype(np.float32)
else:
    x = rows[columns].to_numpy(dtype=np.float32)
predictions = model.predict(x, verbose=0)

if layout.task == "classification":
    table = pd.DataFrame({"label": rows[layout.label], "predicted": predictions.argmax(axis=1),
                          "probability": predictions.max(axis=1).round(3)})
else:
    table = pd.DataFrame({"label": rows[layout.label], "predicted": predictions[:, 0]})
print(f"{model_uri}: predictions {predictions.shape}")
display(table)
