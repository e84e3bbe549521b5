#!/usr/bin/env bash
# Fake GPU discovery for Spark resource scheduling (spark.worker.resource.gpu.discoveryScript):
# a worker with two "GPUs", addresses 0 and 1. There is no GPU behind them; tests/test_gpu.py
# only checks which address each rank was given.
echo '{"name":"gpu","addresses":["0","1"]}'
