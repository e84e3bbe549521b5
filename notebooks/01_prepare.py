# Databricks notebook source
# MAGIC %md
# MAGIC # 1 · Prepare a dataset
# MAGIC
# MAGIC Turns a source into a validated Parquet dataset with `train`, `validation` and `test`
# MAGIC splits and a `manifest.json` (schema, row and class counts, feature statistics), written
# MAGIC by Spark and renamed into place only once it is complete.
# MAGIC
# MAGIC | parameter | meaning |
# MAGIC |---|---|
# MAGIC | `source` | `fashion-mnist`, `synthetic-classification` or `synthetic-regression` |
# MAGIC | `source_dir` | folder with the four Fashion-MNIST IDX files, readable by every executor |
# MAGIC | `rows` | rows of a synthetic source |
# MAGIC | `out` | destination folder (default `<workdir>/data/<source>`) |
# MAGIC | `overwrite` | `true` replaces an existing dataset at `out` |
# MAGIC
# MAGIC CSV or Parquet tables: `sparkdl-tune prepare tabular --help`, or `sdt.TabularSource`.

# COMMAND ----------

# MAGIC %run ./_setup

# COMMAND ----------

import pandas as pd

source_name = param("source", "fashion-mnist")
source_dir = param("source_dir", "/Volumes/main/default/raw/fashion-mnist" if on_databricks
                   else "/usr/share/datasets/fashion-mnist")
rows = int(param("rows", "100000"))
out = param("out", f"{workdir}/data/{source_name}")
overwrite = flag(param("overwrite", "true"))

sources = {
    "fashion-mnist": lambda: sdt.FashionMnistSource(source_dir),
    "synthetic-classification": lambda: sdt.SyntheticClassificationSource(rows=rows),
    "synthetic-regression": lambda: sdt.SyntheticRegressionSource(rows=rows, distractors=2,
                                                                  noise=0.01),
}
if source_name not in sources:
    raise ValueError(f"source {source_name!r} is not one of {sorted(sources)}")
source = sources[source_name]()
print(f"{source_name} -> {out}")

# COMMAND ----------

manifest = sdt.prepare(source, out, spark, overwrite=overwrite)

# COMMAND ----------

# MAGIC %md
# MAGIC What was written: rows per split, the layout and (for classification) class counts.

# COMMAND ----------

layout = manifest.layout
print(f"{layout.task}: features {list(layout.features)} ({layout.feature_kind}, "
      f"{manifest.num_features} values), label '{layout.label}', "
      f"{layout.num_classes or '-'} classes")
display(pd.DataFrame({"split": list(manifest.rows), "rows": list(manifest.rows.values())}))
if manifest.class_counts:
    display(pd.DataFrame(manifest.class_counts).fillna(0).astype(int).rename_axis("class"))

# COMMAND ----------

# MAGIC %md
# MAGIC A few rows of the training split. Training validates the dataset again before it reads
# MAGIC it (`sdt.validate_dataset(spark, out)` does the same check on demand).

# COMMAND ----------

display(sdt.read_split(spark, out, "train").limit(5))
