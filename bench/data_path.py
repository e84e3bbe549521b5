"""Data-path benchmark: samples/s of ``model.fit`` fed by the streamed path (Parquet -> a
row-group reader, Petastorm or Arrow -> tf.data) over the same model fitting numpy arrays in
memory, in one run.

    .venv/bin/python bench/data_path.py [--dataset /tmp/fm] [--epochs 4] [--repeat 3]

Model: the Fashion-MNIST MLP (784-256-128-10, Adam, batch 128), the package defaults. Every
variant runs in its own subprocess (TensorFlow's thread settings are fixed once per process),
and the variants of one repetition run back to back, so each ratio compares neighbours in time
on a shared machine. samples/s counts epochs 2+ only (the first includes warm-up and, for the
cached variants, filling the cache); an epoch's time includes its validation pass (all 6,000
rows; plain Petastorm: 46 batches of 128), exactly as ``TrainResult.samples_per_second``
measures it.

Variants:
    a        in memory: numpy arrays (the materialised Parquet read with pyarrow), model.fit
    b        plain Petastorm: converter.make_tf_dataset(batch_size=128, workers_count=4)
    c        this package's stream, in-memory cache off (data.in_memory_cache=off)
    d        this package's stream, in-memory cache auto (what users get)
    f-off    this package's stream with the Arrow reader (data.reader=arrow), cache off
    f-auto   the same, cache auto
    e-off    two Horovod ranks via launch.train (horovod.spark.run on local[2]), cache off
    e-auto   the same, cache auto
    r        diagnostic: this package's stream alone (no model), cache off, same threads
    rp       diagnostic: this package's Petastorm reader alone (row groups -> numpy)
    ra       diagnostic: the Arrow reader alone (row groups -> numpy, through tf.data)
    rs       diagnostic: stock make_batch_reader(shuffle_rows=True) alone

``--set key=value`` passes config overrides (e.g. ``data.reader_workers=3``) to every variant
(c, d and e use ``data.reader`` as set, petastorm by default; f always arrow);
the materialised copy lives under ``--cache`` (made once, reused while the layout is unchanged).
``--json PATH`` writes all measurements and, under "rows", the rows bench/table.py prints
(bench/_rows.py): each stream variant's ratio against (a), with plain Petastorm (b) as anchor.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

ALL = ("a", "b", "c", "d", "f-off", "f-auto", "e-off", "e-auto")
LABELS = {
    "a": "(a) in memory, numpy arrays",
    "b": "(b) plain Petastorm make_tf_dataset, 4 workers",
    "c": "(c) sparkdl_tune stream, cache off",
    "d": "(d) sparkdl_tune stream, cache auto",
    "f-off": "(f) sparkdl_tune stream, Arrow reader, cache off",
    "f-auto": "(f) sparkdl_tune stream, Arrow reader, cache auto",
    "e-off": "(e) 2 Horovod ranks, cache off (total)",
    "e-auto": "(e) 2 Horovod ranks, cache auto (total)",
    "r": "(r) sparkdl_tune stream alone, no model",
    "rp": "(rp) this package's Petastorm reader alone, no tf.data",
    "ra": "(ra) the Arrow reader alone, through tf.data",
    "rs": "(rs) stock make_batch_reader(shuffle_rows=True) alone",
}


def _config(args):
    from sparkdl_tune.config.loader import load_config

    return load_config(None, overrides=[f"data.path={args.dataset}",
                                        f"data.cache_url={args.cache}",
                                        f"training.epochs={args.epochs}",
                                        "spark.master=local[2]",
                                        "spark.conf.spark.ui.enabled=false", *args.set])


_TIMERS: list = []


def _epoch_timer(tf):
    """An epoch timer like the worker's, also recording this process's CPU seconds per epoch."""

    class Timer(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self.cpu: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t, self._c = time.monotonic(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.monotonic() - self._t)
            self.cpu.append(time.process_time() - self._c)

    timer = Timer()
    _TIMERS.append(timer)
    return timer


def _cpu(timer) -> float:
    """Median CPU seconds (all threads of the process) per epoch, epochs 2+."""
    return statistics.median(timer.cpu[1:] or timer.cpu)


def _rate(samples: int, seconds: list[float]) -> float:
    later = seconds[1:] or seconds
    return samples / (sum(later) / len(later))


# ---------------------------------------------------------------- children (one variant each)

def child_materialise(args) -> dict:
    from sparkdl_tune.driver.dataset import read_manifest
    from sparkdl_tune.driver.materialise import training_data
    from sparkdl_tune.driver.session import get_spark

    cfg = _config(args)
    spark = get_spark(cfg.spark)
    started = time.monotonic()
    data = training_data(spark, cfg.data, read_manifest(args.dataset), min_files=2)
    with open(args.data, "wb") as f:
        pickle.dump(data, f)
    return {"seconds": time.monotonic() - started,
            "files": {s: len(f.files) for s, f in data.splits.items()}}


def _load_data(args):
    with open(args.data, "rb") as f:
        return pickle.load(f)


def _job(args, cfg, data, spark=None, **changes):
    """The TrainJob ``train.fit`` would ship for ``cfg`` (what users get), plus ``changes``."""
    from dataclasses import replace

    from sparkdl_tune.driver.launch import threads_per_proc
    from sparkdl_tune.driver.train import make_job

    # In-process variants run without Spark: on local[2], one process gets both cores either way.
    threads = threads_per_proc(spark, cfg.execution.num_proc, cfg.execution.threads_per_proc)
    return replace(make_job(cfg, data, threads, verbose=0), **changes)


def _steps(cfg, data, size=1):
    batch = cfg.training.batch_size
    return (max(1, data.rows("train") // (batch * size)),
            max(1, data.rows("validation") // (batch * size)))


def child_memory(args) -> dict:
    import numpy as np
    import pyarrow.parquet as pq

    cfg = _config(args)
    data = _load_data(args)
    job = _job(args, cfg, data)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from sparkdl_tune.executor.models import build_model
    from sparkdl_tune.executor.worker import _set_threads

    _set_threads(tf, job.threads)
    tf.keras.utils.set_random_seed(job.seed)

    def arrays(split):
        table = pq.read_table([u[len("file://"):] for u in data.splits[split].files])
        feats = table.column("features").combine_chunks()
        x = feats.values.to_numpy().reshape(len(table), -1).astype(np.float32)
        return x, table.column("label").to_numpy()

    batch = cfg.training.batch_size
    steps, _ = _steps(cfg, data)
    x, y = arrays("train")
    xv, yv = arrays("validation")  # every row, as the streamed path validates
    x, y = x[:steps * batch], y[:steps * batch]
    model = build_model(cfg.model, cfg.training, data.input_dim, data.num_classes,
                        seed=job.seed)
    timer = _epoch_timer(tf)
    model.fit(x, y, batch_size=batch, epochs=cfg.training.epochs, shuffle=True,
              validation_data=(xv, yv), callbacks=[timer], verbose=0)
    return {"sps": _rate(steps * batch, timer.seconds), "epoch_seconds": timer.seconds,
            "cpu_per_epoch": _cpu(timer), "threads": job.threads}


def child_petastorm(args) -> dict:
    from petastorm.spark.spark_dataset_converter import SparkDatasetConverter

    cfg = _config(args)
    data = _load_data(args)
    job = _job(args, cfg, data)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from sparkdl_tune import logs
    from sparkdl_tune.executor.models import build_model
    from sparkdl_tune.executor.worker import _set_threads

    logs.quiet_libraries()
    _set_threads(tf, job.threads)
    tf.keras.utils.set_random_seed(job.seed)
    batch = cfg.training.batch_size
    steps, val_steps = _steps(cfg, data)
    model = build_model(cfg.model, cfg.training, data.input_dim, data.num_classes,
                        seed=job.seed)
    timer = _epoch_timer(tf)
    train, val = (SparkDatasetConverter(s.url, list(s.files), s.rows)
                  for s in (data.splits["train"], data.splits["validation"]))
    with train.make_tf_dataset(batch_size=batch, workers_count=4) as tr, \
            val.make_tf_dataset(batch_size=batch, workers_count=4) as va:
        def xy(b):
            return b.features, b.label

        model.fit(tr.map(xy), steps_per_epoch=steps, epochs=cfg.training.epochs,
                  validation_data=va.map(xy), validation_steps=val_steps, callbacks=[timer],
                  verbose=0)
    return {"sps": _rate(steps * batch, timer.seconds), "epoch_seconds": timer.seconds,
            "cpu_per_epoch": _cpu(timer), "threads": job.threads}


def child_stream(args, cache: str, reader: str = "") -> dict:
    from sparkdl_tune.driver import launch
    from sparkdl_tune.executor import worker

    cfg = _config(args)
    data = _load_data(args)
    job = _job(args, cfg, data, in_memory_cache=cache, reader=reader or cfg.data.reader)
    worker._EpochTimer = _epoch_timer  # same timing, plus CPU seconds (this process only)
    result = launch.train(None, job)
    return {"sps": result.samples_per_second,
            "epoch_seconds": _TIMERS[0].seconds, "cpu_per_epoch": _cpu(_TIMERS[0]),
            "cached": result.extra["cached_in_memory"], "threads": job.threads,
            "reader_workers": job.reader_workers, "reader": job.reader,
            "test_accuracy": result.test_metrics.get("test_accuracy")}


def child_horovod(args, cache: str) -> dict:
    from sparkdl_tune import logs
    from sparkdl_tune.driver import launch
    from sparkdl_tune.driver.session import get_spark

    cfg = _config(args)
    data = _load_data(args)
    spark = get_spark(cfg.spark)
    logs.quiet_libraries()
    from dataclasses import replace

    cfg = replace(cfg, execution=replace(cfg.execution, num_proc=2))
    job = _job(args, cfg, data, spark=spark, in_memory_cache=cache)
    started = time.monotonic()
    result = launch.train(spark, job)
    mean = result.extra["epoch_seconds"]  # the ranks' mean epoch (no per-epoch list)
    return {"sps": result.samples_per_second,
            "epoch_seconds": mean if isinstance(mean, list) else [mean],
            "cached": [r["cached_in_memory"] for r in result.extra["ranks"]],
            "threads": job.threads, "reader_workers": job.reader_workers,
            "wall": time.monotonic() - started,
            "test_accuracy": result.test_metrics.get("test_accuracy")}


def child_stream_alone(args) -> dict:
    """Our tf.data pipeline drained without a model: what the reader side can deliver."""
    cfg = _config(args)
    data = _load_data(args)
    job = _job(args, cfg, data, in_memory_cache="off")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from sparkdl_tune import logs
    from sparkdl_tune.executor.stream import stream
    from sparkdl_tune.executor.worker import _set_threads

    logs.quiet_libraries()
    _set_threads(tf, job.threads)
    batch = cfg.training.batch_size
    steps, _ = _steps(cfg, data)
    seconds, cpu = [], []
    with stream(job, "train", 0, 1) as (ds, _):
        it = iter(ds)
        for _ in range(cfg.training.epochs):
            t, c = time.monotonic(), time.process_time()
            for _ in range(steps):
                next(it)
            seconds.append(time.monotonic() - t)
            cpu.append(time.process_time() - c)
        del it
    return {"sps": _rate(steps * batch, seconds), "epoch_seconds": seconds,
            "cpu_per_epoch": statistics.median(cpu[1:])}


def child_reader_alone(args, stock: bool) -> dict:
    """A Petastorm reader (row groups -> numpy) alone: this package's, or the stock one."""
    cfg = _config(args)
    data = _load_data(args)
    job = _job(args, cfg, data, in_memory_cache="off")
    from petastorm import make_batch_reader

    from sparkdl_tune.executor.readers.petastorm import _make_reader

    urls = list(data.splits["train"].files)
    reader = (make_batch_reader(urls, num_epochs=None, workers_count=job.reader_workers,
                                seed=1, shuffle_rows=True) if stock else
              _make_reader(urls, workers=job.reader_workers, shuffle=True, seed=1,
                           num_epochs=None, cur_shard=None, shard_count=None))
    rows, seconds, cpu = data.rows("train"), [], []
    with reader:
        for _ in range(cfg.training.epochs):
            t, c, n = time.monotonic(), time.process_time(), 0
            while n < rows:
                n += len(next(reader).label)
            seconds.append(time.monotonic() - t)
            cpu.append(time.process_time() - c)
    return {"sps": _rate(rows, seconds), "epoch_seconds": seconds,
            "cpu_per_epoch": statistics.median(cpu[1:])}


def child_arrow_alone(args) -> dict:
    """The Arrow reader alone (row groups -> numpy -> tf.data), drained without a model."""
    cfg = _config(args)
    data = _load_data(args)
    job = _job(args, cfg, data, in_memory_cache="off")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from sparkdl_tune.executor.readers.arrow import ArrowReader
    from sparkdl_tune.executor.worker import _set_threads

    _set_threads(tf, job.threads)
    reader = ArrowReader(list(data.splits["train"].files), workers=job.reader_workers,
                         shuffle=True, seed=1, num_epochs=None, cur_shard=None,
                         shard_count=None)
    rows, seconds, cpu = data.rows("train"), [], []
    try:
        it = iter(reader.dataset())
        for _ in range(cfg.training.epochs):
            t, c, n = time.monotonic(), time.process_time(), 0
            while n < rows:
                n += len(next(it)[1])
            seconds.append(time.monotonic() - t)
            cpu.append(time.process_time() - c)
        del it
    finally:
        reader.close()
    return {"sps": _rate(rows, seconds), "epoch_seconds": seconds,
            "cpu_per_epoch": statistics.median(cpu[1:])}


CHILDREN = {
    "a": child_memory, "b": child_petastorm,
    "c": lambda a: child_stream(a, "off"), "d": lambda a: child_stream(a, "auto"),
    "f-off": lambda a: child_stream(a, "off", "arrow"),
    "f-auto": lambda a: child_stream(a, "auto", "arrow"),
    "ra": child_arrow_alone,
    "e-off": lambda a: child_horovod(a, "off"), "e-auto": lambda a: child_horovod(a, "auto"),
    "r": child_stream_alone, "rp": lambda a: child_reader_alone(a, stock=False),
    "rs": lambda a: child_reader_alone(a, stock=True), "materialise": child_materialise,
}


# ---------------------------------------------------------------- parent

def _run_child(args, variant: str, timeout: int = 1200) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", variant, "--data", args.data,
           "--dataset", args.dataset, "--cache", args.cache, "--epochs", str(args.epochs)]
    for item in args.set:
        cmd += ["--set", item]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise SystemExit(f"variant {variant} failed (exit {proc.returncode}):\n{tail}")
    out = json.loads(lines[-1][len("RESULT "):])
    out["process_seconds"] = time.monotonic() - started
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="/tmp/fm")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variants", default=",".join(ALL),
                        help=f"comma-separated, from {', '.join(LABELS)} (default: a to e)")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(),
                                                        "sparkdl-bench-cache"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", help="also write all measurements here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        import warnings

        warnings.simplefilter("ignore")
        print("RESULT " + json.dumps(CHILDREN[args.child](args)), flush=True)
        return

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in LABELS]
    if unknown:
        parser.error(f"unknown variants {unknown}; pick from {list(LABELS)}")
    if "a" not in variants:
        variants.insert(0, "a")  # every ratio is against (a) of the same repetition
    fd, args.data = tempfile.mkstemp(prefix="bench-data-", suffix=".pkl")
    os.close(fd)
    try:
        made = _run_child(args, "materialise")
        print(f"materialised (or reused) under {args.cache}: {made['files']} files, "
              f"{made['seconds']:.1f} s", flush=True)
        runs: dict[str, list[dict]] = {v: [] for v in variants}
        for rep in range(args.repeat):
            for v in variants:
                r = _run_child(args, v)
                runs[v].append(r)
                print(f"  rep {rep + 1} {v:7s} {r['sps']:9.0f} samples/s  epochs "
                      + " ".join(f"{s:.2f}" for s in r["epoch_seconds"])
                      + (f"  cpu/epoch {r['cpu_per_epoch']:.2f} s" if "cpu_per_epoch" in r else "")
                      + (f"  cached={r['cached']}" if "cached" in r else ""), flush=True)
    finally:
        os.unlink(args.data)
    _report(args, variants, runs)


def _report(args, variants, runs) -> None:
    base = [r["sps"] for r in runs["a"]]
    print()
    print(f"{args.epochs} epochs, samples/s over epochs 2+, median of {args.repeat} "
          f"(ratio: per repetition against (a) of the same repetition, then median)")
    print("| variant | samples/s (median) | runs | ratio vs (a) (median) | ratios "
          "| CPU s/epoch |")
    print("|---|---:|---|---:|---|---:|")
    summary = {}
    for v in variants:
        sps = [r["sps"] for r in runs[v]]
        ratios = [s / b for s, b in zip(sps, base)]
        cpu = [r["cpu_per_epoch"] for r in runs[v] if "cpu_per_epoch" in r]
        summary[v] = {"sps": statistics.median(sps), "ratio": statistics.median(ratios),
                      "runs": runs[v]}
        print(f"| {LABELS[v]} | {statistics.median(sps):,.0f} | "
              f"{', '.join(f'{s:,.0f}' for s in sps)} | {statistics.median(ratios):.2f} | "
              f"{', '.join(f'{x:.2f}' for x in ratios)} | "
              f"{f'{statistics.median(cpu):.2f}' if cpu else '-'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "data"},
                       "variants": summary, "rows": table_rows(summary)}, f, indent=1)


TARGETS = {"c": ">= 0.95", "d": ">= 0.98", "f-off": ">= 0.95", "f-auto": ">= 0.98",
           "e-off": ">= 0.80", "e-auto": ">= 0.80"}


def table_rows(summary: dict) -> list[dict]:
    """One row per stream variant run: its ratio against (a), plain Petastorm as anchor."""
    import importlib.util

    from _rows import row

    def cpu(v):
        values = [r["cpu_per_epoch"] for r in summary[v]["runs"] if "cpu_per_epoch" in r]
        return statistics.median(values) if values else None

    a = summary["a"]
    if "b" in summary:
        anchor = f"plain Petastorm make_tf_dataset ÷ in memory: {summary['b']['ratio']:.2f}"
        value = summary["b"]["ratio"]
    else:
        anchor, value = "n/a (no petastorm on this profile)", None
    out = []
    for v, target in TARGETS.items():
        if v not in summary:
            if v.startswith("e") and importlib.util.find_spec("horovod") is None:
                out.append(row(f"{LABELS[v]} ÷ 1 in-memory process", None, target,
                               "n/a (no horovod on this profile)"))
            continue
        ratio = summary[v]["ratio"]
        if v.startswith("e"):
            limit = (f"2 ranks share the 2 cores: {summary[v]['sps']:,.0f} samples/s in all "
                     f"against {a['sps']:,.0f} for one in-memory process")
            out.append(row(f"{LABELS[v]} ÷ 1 in-memory process", ratio, target,
                           f"1 in-memory process {a['sps']:,.0f} samples/s", None, limit))
            continue
        mine, base = cpu(v), cpu("a")
        limit = (f"CPU {mine:.2f} s per epoch against {base:.2f} in memory (reading, decoding "
                 "and tf.data on the same 2 cores)" if mine and base else "")
        out.append(row(f"1 process, {LABELS[v]} ÷ in memory", ratio, target, anchor, value,
                       limit))
    return out


if __name__ == "__main__":
    main()
