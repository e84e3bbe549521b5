"""``sparkdl-tune``: argument parsing only; the work is done by the package's functions.

Exit codes: 0 success, else the error's own ``exit_code`` (2 bad input or configuration, with
one line on stderr; 1 anything else).
Nothing heavy is imported until a sub-command runs, so ``--help`` answers at once. Standard
output carries exactly one JSON document (the summary); progress, Keras epoch lines, the ranks'
output and everything libraries print go to stderr, so ``sparkdl-tune tune ... | jq .`` works.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, Optional

from .errors import EXIT_OK, SparkdlTuneError, UserError


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--conf-dir", default="conf",
                        help="folder with base/ and per-environment YAML (default: conf)")
    common.add_argument("--env", default=None,
                        help="overlay folder under --conf-dir, layered over base/; it must "
                             "exist (default: no overlay)")
    common.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging (default: off)")
    return common


def _overrides(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Config overrides come last, after any positional argument of the sub-command."""
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. spark.master=local[2] training.epochs=5")
    return parser


def _prepare_parser(sub, common) -> None:
    prepare = sub.add_parser("prepare", help="turn a source into a validated Parquet dataset")
    kinds = prepare.add_subparsers(dest="source", required=True, metavar="SOURCE")
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--out", required=True, help="destination folder (required)")
    shared.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out (default: refuse)")
    shared.add_argument("--seed", type=int, default=42,
                        help="seed of the split assignment (default: 42)")
    shared.add_argument("--validation-fraction", type=float, default=0.1,
                        help="share of rows for validation (default: 0.1)")
    parents = [common, shared]

    fm = kinds.add_parser("fashion-mnist", parents=parents, help="Fashion-MNIST IDX files")
    fm.add_argument("--source", dest="source_dir", default="/usr/share/datasets/fashion-mnist",
                    help="folder with the four IDX files")
    fm.add_argument("--classes", type=_int_list, help="keep only these classes, relabelled "
                    "0, 1, ... in this order, e.g. 5,6,7,8,9 (default: all ten)")
    fm.add_argument("--train-fraction", type=float, default=1.0, help="keep this stratified "
                    "share of the train file; validation comes from it (default: 1.0)")

    tab = kinds.add_parser("tabular", parents=parents, help="CSV or Parquet table",
                           description="A CSV file (with a header) or a Parquet path -> a "
                           "validated Parquet dataset with train/validation/test splits.")
    tab.add_argument("--input", required=True, help="CSV file or Parquet path (required)")
    tab.add_argument("--label", required=True, help="label column (required)")
    tab.add_argument("--features", help="comma-separated numeric feature columns, or one "
                     "array column (default: every column but the label and split column)")
    tab.add_argument("--task", choices=["classification", "regression"],
                     default="classification", help="classification needs integer labels "
                     "0..K-1 (default: classification)")
    tab.add_argument("--num-classes", type=int, help="classes (default: max label + 1)")
    tab.add_argument("--format", choices=["auto", "csv", "parquet"], default="auto",
                     help="auto: csv for a .csv/.csv.gz path, else parquet (default: auto)")
    tab.add_argument("--test-fraction", type=float, default=0.1,
                     help="share of rows for test, unused with --split-column (default: 0.1)")
    tab.add_argument("--split-column", help="keep the table's own splits: a column holding "
                     "train/validation/test, or train/test with validation carved from train "
                     "by --validation-fraction (default: none, a seeded random split)")

    reg = kinds.add_parser("synthetic-regression", parents=parents, help="y = x1 * x2 + noise")
    reg.add_argument("--rows", type=int, default=100_000)
    reg.add_argument("--distractors", type=int, default=0, help="extra columns with no signal")
    reg.add_argument("--noise", type=float, default=0.0, help="std of Gaussian noise on y")
    reg.add_argument("--partitions", type=int, help="Spark partitions (default: 1 per 1M rows)")
    reg.add_argument("--test-fraction", type=float, default=0.1)

    cls = kinds.add_parser("synthetic-classification", parents=parents,
                           help="separable Gaussian blobs")
    cls.add_argument("--rows", type=int, default=100_000)
    cls.add_argument("--features", type=int, default=8)
    cls.add_argument("--classes", type=int, default=3)
    cls.add_argument("--partitions", type=int)
    cls.add_argument("--test-fraction", type=float, default=0.1)
    for source_parser in (fm, tab, reg, cls):
        _overrides(source_parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparkdl-tune",
        description="Train and tune Keras models on Parquet data with Spark, Petastorm, "
                    "Horovod, Hyperopt and MLflow.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()
    _prepare_parser(sub, common)
    val = sub.add_parser("validate", parents=[common], help="check a prepared dataset")
    val.add_argument("--dataset", required=True, help="prepared dataset folder")
    _overrides(val)
    tr = sub.add_parser("train", parents=[common],
                        help="train one model on a prepared dataset, log it to MLflow")
    tr.add_argument("config", help="job YAML (layered over conf/base and conf/<env>)")
    tr.add_argument("--run-name", help="MLflow run name")
    tr.add_argument("--summary", help="also write the JSON summary to this file (atomically)")
    _overrides(tr)
    tu = sub.add_parser("tune", parents=[common],
                        help="search hyper-parameters, retrain the best, register it")
    tu.add_argument("config", help="job YAML with a search: section")
    tu.add_argument("--summary", help="also write the JSON summary to this file (atomically)")
    _overrides(tu)
    rep = sub.add_parser("report", parents=[common],
                         help="plots and an HTML page of a search, read from MLflow")
    rep.add_argument("search", help="the search's name (search.name) or its parent run id")
    rep.add_argument("--out", help="folder (default: <search.output_dir>/<name>/report)")
    rep.add_argument("--pairs", nargs="+", metavar="A,B",
                     help="hyper-parameter pairs for heat-maps, e.g. "
                          "training.learning_rate,model.dropout (default: the most important)")
    _overrides(rep)
    return parser


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(c) for c in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of class "
                                         "numbers, e.g. 5,6,7,8,9") from None


def _source(args):
    from .driver import datasets

    if args.source == "fashion-mnist":
        return datasets.FashionMnistSource(args.source_dir, args.validation_fraction, args.seed,
                                           args.classes, args.train_fraction)
    if args.source == "tabular":
        features = tuple(c.strip() for c in args.features.split(",")) if args.features else None
        return datasets.TabularSource(
            path=args.input, label=args.label, features=features, task=args.task,
            num_classes=args.num_classes, format=args.format,
            validation_fraction=args.validation_fraction, test_fraction=args.test_fraction,
            seed=args.seed, split_column=args.split_column)
    if args.source == "synthetic-regression":
        return datasets.SyntheticRegressionSource(
            rows=args.rows, distractors=args.distractors, noise=args.noise, seed=args.seed,
            partitions=args.partitions, validation_fraction=args.validation_fraction,
            test_fraction=args.test_fraction)
    return datasets.SyntheticClassificationSource(
        rows=args.rows, features=args.features, classes=args.classes, seed=args.seed,
        partitions=args.partitions, validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction)


def _run(args) -> tuple[Any, Optional[str]]:
    """Do the sub-command's work; return its JSON-able summary and the --summary file, if any."""
    from .config.loader import load_config
    from .config.writable import check_file, check_folder
    from .driver.session import get_spark

    job_files = [args.config] if getattr(args, "config", None) else []
    cfg = load_config(args.conf_dir, args.env, files=job_files, overrides=args.overrides)
    if getattr(args, "summary", None):  # written last: asked first
        check_file("--summary", args.summary, "summary file")
    if args.command == "prepare":
        from .driver.preparation import prepare

        source = _source(args)
        check_folder("--out", args.out, "dataset folder")  # before get_spark below
        manifest = prepare(source, args.out, get_spark(cfg.spark), overwrite=args.overwrite)
        return json.loads(manifest.to_json()), None
    if args.command == "validate":
        from .driver.validation import validate_dataset

        manifest = validate_dataset(get_spark(cfg.spark), args.dataset)
        return {"dataset": args.dataset, "valid": True, "rows": manifest.rows}, None
    if args.command == "train":
        from .driver.train import train

        # Spark starts inside, after the checks that need none (tracking server, space)
        return train(cfg, run_name=args.run_name), args.summary
    if args.command == "tune":
        from .search.tuner import tune

        return tune(cfg), args.summary
    if args.command == "report":
        import os

        from .reporting import find_parent, parse_pairs, report

        pairs, extra = parse_pairs(args.pairs)  # --pairs swallows key=value words after it
        if extra:
            cfg = load_config(args.conf_dir, args.env, overrides=[*args.overrides, *extra])
        from .tracking.layout import TAG_SEARCH
        from .tracking.uri import check_writable

        if args.out:  # before the store is read; report() checks the exact folder again
            check_folder("--out", args.out, "report folder")
        else:
            check_folder("search.output_dir", cfg.search.output_dir, "output folder")
        check_writable(cfg.mlflow)
        name = find_parent(cfg.mlflow, args.search).data.tags.get(TAG_SEARCH)
        out = args.out or os.path.join(cfg.search.output_dir, name or args.search, "report")
        return report(cfg.mlflow, args.search, out, pairs or None), None
    raise AssertionError(args.command)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout meanwhile to stderr: Python's ``sys.stdout`` and file
    descriptor 1 (which the Spark JVM and other child processes started meanwhile inherit)."""
    saved_stream, saved_fd = sys.stdout, None
    try:
        sys.stdout.flush()
        saved_fd = os.dup(1)
        sys.stderr.flush()
        os.dup2(2, 1)
    except (OSError, ValueError, io.UnsupportedOperation):  # no real descriptor (notebooks)
        saved_fd = None
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = saved_stream
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        if saved_fd is not None:
            os.dup2(saved_fd, 1)
            os.close(saved_fd)


def _emit(summary: Any, path: str | None) -> None:
    """The one JSON document on stdout (and, with ``--summary``, in a file)."""
    text = json.dumps(summary, indent=2, default=str)
    print(text, flush=True)
    if path:
        from .files import write_json_atomic

        write_json_atomic(path, text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of ``jobs/*.py``; returns the exit code."""
    from . import logs

    parser = build_parser()
    # key=value overrides may follow options too ("train c.yaml --summary s.json a.b=1"),
    # which argparse's positional matching alone does not allow.
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if "=" not in a or a.startswith("-")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*getattr(args, "overrides", []), *extra]
    logs.setup(verbose=args.verbose)
    try:
        with _stdout_to_stderr():
            summary, path = _run(args)
        _emit(summary, path)
        return EXIT_OK
    except SparkdlTuneError as exc:  # the error's own exit code: 2 for the user's to fix
        kind = "error" if isinstance(exc, UserError) else "failed"
        print(f"sparkdl-tune: {kind}: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code


# every character str.splitlines() breaks at, written as an escape
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


def _one_line(exc: Exception) -> str:
    """The message on one line: a key or value the user wrote may hold a line break (of any
    kind str.splitlines() knows), or a URI's credentials (``user:secret@``: redacted)."""
    from .errors import redact

    return redact(str(exc)).translate(_LINE_BREAKS)


if __name__ == "__main__":
    sys.exit(main())
