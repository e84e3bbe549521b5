"""How parallel trials reach the executors besides SparkTrials' job per trial (driver side)."""
