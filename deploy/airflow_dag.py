"""Airflow DAG: prepare -> tune -> report, one ``spark-submit`` of a ``jobs/*.py`` entry point each.

Needs ``apache-airflow>=2.4`` with ``apache-airflow-providers-apache-spark`` and a Spark
connection ``spark_default`` (master URL, e.g. ``spark://spark-master:7077`` or ``yarn``;
deploy mode ``client``). The repository is checked out at ``REPO`` on the Airflow workers, so
the driver reads the YAML under ``REPO/conf``; executors get the pinned Python environment as
an archive (``venv-pack -o env.tar.gz`` of the ``.venv`` made by ``scripts/setup.sh``) and the
package as a wheel. ``DATA`` must be a folder every node mounts at the same path.

MLflow credentials stay out of this file: the tracking server and its token come from the
Airflow worker's environment (``MLFLOW_TRACKING_URI``, ``MLFLOW_TRACKING_TOKEN``), which
``spark-submit`` and the driver inherit.

Every option below is a real ``sparkdl-tune`` option; ``tests/test_deploy.py`` reads this file
with ``ast`` (no Airflow needed) and parses each task's arguments with the CLI's parser and
config loader. Keep the values plain literals, f-strings and names bound at module level.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow import DAG
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

REPO = "/opt/sparkdl_tune"
# pyspark puts only .zip/.egg files from --py-files on the executors' path, not .whl: ship the
# wheel's contents as a zip (cp dist/sparkdl_tune-0.1.0-py3-none-any.whl dist/sparkdl_tune.zip)
PACKAGE_ZIP = f"{REPO}/dist/sparkdl_tune.zip"
ENV_ARCHIVE = "hdfs:///apps/sparkdl_tune/env.tar.gz#env"
DATA = "/shared/sparkdl_tune"
DATASET = f"{DATA}/data/fashion-mnist"
# One search per DAG run: rerunning a failed tune task resumes its search from MLflow.
SEARCH = "fashion-mlp-{{ ds_nodash }}"

SUBMIT = {
    "conn_id": "spark_default",
    "py_files": PACKAGE_ZIP,
    "archives": ENV_ARCHIVE,
    "conf": {
        "spark.pyspark.python": "./env/bin/python",
        "spark.pyspark.driver.python": f"{REPO}/.venv/bin/python",
        "spark.executorEnv.TF_CPP_MIN_LOG_LEVEL": "2",
    },
    "driver_memory": "4g",
    "executor_memory": "8g",
    "executor_cores": 4,
}
CONFIG = ["--conf-dir", f"{REPO}/conf"]
TRACKING = ["mlflow.experiment=fashion-mnist"]

with DAG(
    dag_id="sparkdl_tune_fashion_mnist",
    description="Fashion-MNIST: prepare, tune an MLP, report the search",
    schedule="0 3 * * 0",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["sparkdl_tune"],
) as dag:
    prepare = SparkSubmitOperator(
        task_id="prepare",
        name="sparkdl-tune-prepare",
        application=f"{REPO}/jobs/prepare.py",
        application_args=[
            "fashion-mnist",
            "--source", "/usr/share/datasets/fashion-mnist",
            "--out", DATASET,
            "--overwrite",
            *CONFIG,
        ],
        **SUBMIT,
    )
    tune = SparkSubmitOperator(
        task_id="tune",
        name="sparkdl-tune-tune",
        application=f"{REPO}/jobs/tune.py",
        application_args=[
            f"{REPO}/conf/jobs/fashion_tune.yaml",
            *CONFIG,
            f"data.path={DATASET}",
            f"data.cache_url=file://{DATA}/cache/petastorm",
            f"search.name={SEARCH}",
            "search.max_trials=24",
            "search.timeout_minutes=90",
            f"search.output_dir={DATA}/tune",
            "search.report=false",  # the report task draws it
            "mlflow.registered_model_name=fashion-mlp-tuned",
            *TRACKING,
        ],
        execution_timeout=timedelta(hours=3),
        **SUBMIT,
    )
    report = SparkSubmitOperator(
        task_id="report",
        name="sparkdl-tune-report",
        application=f"{REPO}/jobs/report.py",
        application_args=[
            SEARCH,
            "--out", f"{DATA}/tune/{SEARCH}/report",
            *CONFIG,
            *TRACKING,
        ],
        **SUBMIT,
    )

    prepare >> tune >> report
