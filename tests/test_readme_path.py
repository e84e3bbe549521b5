"""README's "Your own data in five minutes", followed as written on the shipped job files (with
overrides appended only to keep it small), and what ``prepare tabular`` offers for it."""

from __future__ import annotations

import json
import pathlib
import re
import shlex

import numpy as np
import pytest

from sparkdl_tune.cli import main

REPO = pathlib.Path(__file__).resolve().parents[1]
MARKER = "<!-- readme-path: own-data -->"
# appended to the README's tune line: a small budget and private stores
QUICK = ["search.max_trials=2", "search.trial_epochs=1", "training.epochs=1",
         "search.report=false", "data.cache_url={tmp}/cache",
         "mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db"]


def readme_commands() -> list[list[str]]:
    """The ``sparkdl-tune`` lines of the fenced block after the marker."""
    text = (REPO / "README.md").read_text()
    assert MARKER in text, "README lost its own-data block"
    block = re.search(r"```(?:sh|bash)?\n(.*?)```", text[text.index(MARKER):], re.S).group(1)
    return [shlex.split(line) for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def write_csv(path: pathlib.Path, rows: int = 400, split: bool = False) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(rows, 3))
    y = x[:, 0] * x[:, 1] + 0.5 * x[:, 2]
    head = "x1,x2,x3,y" + (",split" if split else "")
    lines = [head]
    for i, (r, t) in enumerate(zip(x, y)):
        tail = f",{'test' if i % 5 == 0 else 'train'}" if split else ""
        lines.append(f"{r[0]:.5f},{r[1]:.5f},{r[2]:.5f},{t:.5f}{tail}")
    path.write_text("\n".join(lines) + "\n")


def _run(args: list[str], cwd: pathlib.Path) -> str:
    """A README line as the user types it: the venv's console script, in ``cwd``."""
    import os
    import subprocess
    import sys

    venv_bin = pathlib.Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}",
           "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run([str(venv_bin / args[0]), *args[1:], "spark.master=local[2]"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow  # two CLI processes, each starting its own Spark
def test_readme_own_data_path_runs_on_the_shipped_job(tmp_path):
    commands = readme_commands()
    assert [c[:2] for c in commands] == [["sparkdl-tune", "prepare"], ["sparkdl-tune", "tune"]]
    assert (REPO / commands[1][2]).is_file()  # the shipped job file it names
    (tmp_path / "conf").symlink_to(REPO / "conf")  # the README runs from the repository root
    write_csv(tmp_path / "my.csv")
    manifest = json.loads(_run(commands[0], tmp_path))
    assert manifest["layout"]["features"] == ["x1", "x2", "x3"]
    assert sum(manifest["rows"].values()) == 400
    summary = json.loads(_run([*commands[1], *(q.format(tmp=tmp_path) for q in QUICK)],
                              tmp_path))
    assert {"trials", "best_params", "final", "parent_run_id"} <= set(summary)
    assert summary["trials"] == 2 and summary["failed"] == 0
    assert {"model.n_layers", "model.layer_units"} <= set(summary["best_params"])
    assert {"test_loss", "test_mae"} <= set(summary["final"]["test_metrics"])
    assert (tmp_path / "out/tune/tabular-regression/summary.json").is_file()


def test_both_shipped_tabular_jobs_load_with_their_spaces():
    from sparkdl_tune.config.loader import load_config
    from sparkdl_tune.search.tuner import load_space

    for task in ("regression", "classification"):
        cfg = load_config(REPO / "conf", files=[REPO / f"conf/jobs/tabular_{task}.yaml"])
        assert cfg.model.task == task
        assert len(load_space(cfg).dimensions) >= 4


def test_split_column_keeps_the_tables_own_splits(spark, tmp_path, capsys):
    write_csv(tmp_path / "split.csv", split=True)
    args = ["prepare", "tabular", "--input", str(tmp_path / "split.csv"), "--label", "y",
            "--task", "regression", "--split-column", "split", "--validation-fraction", "0.25",
            "--out", str(tmp_path / "kept")]
    assert main(args) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["layout"]["features"] == ["x1", "x2", "x3"]  # not the split column
    rows = manifest["rows"]
    assert rows["test"] == 80  # every 5th row, exactly as the table said
    assert rows["train"] + rows["validation"] == 320 and 40 < rows["validation"] < 120


def test_a_split_column_with_other_values_exits_2(spark, tmp_path, capsys):
    path = tmp_path / "odd.csv"
    path.write_text("x1,y,part\n0.1,1.0,train\n0.2,2.0,holdout\n0.3,3.0,test\n")
    assert main(["prepare", "tabular", "--input", str(path), "--label", "y", "--task",
                 "regression", "--split-column", "part", "--out", str(tmp_path / "o")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sparkdl-tune")]
    assert len(err) == 1 and "split column 'part' holds holdout, test, train" in err[0], err


def test_prepare_tabular_help_gives_every_options_default(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "tabular", "--help"])
    text = capsys.readouterr().out
    options = text[text.index("options:"):]
    entries = re.split(r"\n  (?=-)", options)[1:]
    assert len(entries) >= 14
    for entry in entries:
        if entry.startswith("-h"):
            continue
        assert "default" in entry or "required" in entry, entry
    assert "--split-column" in text
