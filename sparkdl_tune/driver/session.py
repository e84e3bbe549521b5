"""The driver's SparkSession: created from config, or the one spark-submit/Databricks made."""

from __future__ import annotations

import os
import sys

from .. import logs
from ..config.schema import SparkSettings
from ..errors import public

log = logs.get("spark")


@public
def get_spark(settings: SparkSettings | None = None):
    """Return the active SparkSession, or build one from ``settings``.

    Under ``spark-submit`` or on Databricks a session (or its gateway) already exists and its
    master wins; ``settings.master`` only applies when this process starts Spark itself.
    """
    from pyspark.sql import SparkSession

    settings = settings or SparkSettings()
    active = SparkSession.getActiveSession()
    if active is None:
        builder = SparkSession.builder.appName(settings.app_name)
        launched_by_submit = "PYSPARK_GATEWAY_PORT" in os.environ
        if not launched_by_submit:
            master = settings.master or "local[*]"
            if master.startswith("local"):
                # Local executors must run this interpreter (the venv), not whatever
                # "python3" is first on PATH; and a one-machine Spark listens on loopback only.
                os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
                os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = builder.master(master)
            builder = builder.config("spark.ui.showConsoleProgress", "false")
            builder = builder.config("spark.sql.shuffle.partitions", "8")
            if "spark.driver.extraJavaOptions" not in settings.conf:  # no banner, no noise
                logging = os.path.join(os.path.dirname(__file__), "log4j2.properties")
                builder = builder.config("spark.driver.extraJavaOptions",
                                         f"-Dlog4j.configurationFile=file:{logging}")
        for key, value in settings.conf.items():
            builder = builder.config(key, value)
        # Executors start Python workers that import TensorFlow; keep their banners quiet too.
        builder = builder.config("spark.executorEnv.TF_CPP_MIN_LOG_LEVEL", "2")
        active = builder.getOrCreate()
        active.sparkContext.setLogLevel(settings.log_level)
    sc = active.sparkContext
    log.info("Spark master %s, %d task slots, app %s", sc.master, slots(active), sc.appName)
    return active


def slots(spark) -> int:
    """How many tasks the cluster runs at once (default parallelism is Spark's own estimate)."""
    return int(spark.sparkContext.defaultParallelism)
