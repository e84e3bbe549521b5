"""Search reports from a real search in a real MLflow store, checked down to the browser."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess

import pytest
from conftest import tune_overrides
from PIL import Image

from sparkdl_tune.cli import main
from sparkdl_tune.config.loader import load_config
from sparkdl_tune.errors import ConfigError
from sparkdl_tune.reporting import parse_pairs, report
from sparkdl_tune.reporting.search import Param, Search, Trial, importance

# two numeric dimensions, one categorical, and a loss that fails for classification
SPACE = {"training.learning_rate": {"loguniform": [1e-3, 1e-1]},
         "model.dropout": {"uniform": [0.0, 0.5]},
         "model.units": {"choice": [[8], [16, 8]]},
         "training.loss": {"choice": ["auto", "auto", "auto", "mse"]}}
FIGURES = {"best_so_far.png", "learning_curves.png", "time_vs_test.png", "importance.png"}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--run-all-compositor-stages-before-draw", "--virtual-time-budget=5000"]


@pytest.fixture(scope="module")
def searched(spark, tiny_tabular, tmp_path_factory):
    """One real 6-trial search (one trial fails); tune writes the report at its end."""
    from sparkdl_tune.search.tuner import tune

    tmp = tmp_path_factory.mktemp("report")
    cfg = load_config(None, overrides=tune_overrides(
        tiny_tabular, tmp, SPACE, search__name="reported", search__algorithm="random",
        search__max_trials=6))
    summary = tune(cfg, spark)
    assert summary["failed"] >= 1 and summary["trials"] - summary["failed"] >= 3, summary
    return cfg, summary, tmp


def artifacts(cfg, run_id, path="report") -> set[str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=cfg.mlflow.tracking_uri)
    return {a.path.split("/")[-1] for a in client.list_artifacts(run_id, path)}


def test_tune_writes_every_figure_embeds_them_and_logs_them(searched):
    cfg, summary, tmp = searched
    page = tmp / "out" / "reported" / "report" / "report.html"
    assert summary["report"] == str(page)
    folder = page.parent
    pngs = {p.name for p in folder.glob("*.png")}
    heatmaps = {n for n in pngs if n.startswith("heatmap_")}
    assert FIGURES <= pngs and len(heatmaps) == 3, pngs  # pairs among the 3 varied params
    text = page.read_text()
    for name in pngs:
        with Image.open(folder / name) as im:
            im.verify()
        with Image.open(folder / name) as im:
            assert im.format == "PNG" and im.width >= 600 and im.height >= 300, (name, im.size)
        encoded = base64.b64encode((folder / name).read_bytes()).decode()
        assert f"data:image/png;base64,{encoded}" in text, name
    assert not re.search(r"""(src|href)=['"](?!data:)""", text)  # nothing to fetch
    assert "Failed trials (" in text and "mse" in text
    assert "final model test_accuracy" in text
    assert artifacts(cfg, summary["parent_run_id"]) == pngs | {"report.html"}
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".report.")]


def test_report_opens_in_chromium_with_every_image_loaded(searched, tmp_path):
    cfg, summary, tmp = searched
    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser")
                     if shutil.which(n)), None)
    if chromium is None:
        pytest.fail("chromium is not installed: run scripts/setup.sh (apt-get install chromium)")
    source = tmp / "out" / "reported" / "report" / "report.html"
    probe = tmp_path / "probe.html"  # a copy with a script that records what loaded
    probe.write_text(source.read_text().replace("</body>", """<script>
window.addEventListener("load", () => document.body.setAttribute("data-images",
  JSON.stringify([...document.images].map(i => [i.alt, i.naturalWidth, i.complete]))));
</script></body>"""))
    run = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*run, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=90, check=True).stdout
    found = re.search(r'data-images="([^"]*)"', dom)
    assert found, dom[:2000]
    images = json.loads(html.unescape(found.group(1)))
    assert len(images) == len(list(source.parent.glob("*.png")))
    assert all(width > 0 and complete for _, width, complete in images), images
    shot = tmp_path / "screenshot.png"
    subprocess.run([*run, f"--screenshot={shot}", "--window-size=1280,4000", source.as_uri()],
                   capture_output=True, timeout=90, check=True)
    with Image.open(shot) as im:
        assert im.size == (1280, 4000)
        assert len(set(im.convert("L").resize((64, 200)).getdata())) > 20  # not a blank page


def test_cli_report_with_pairs_replaces_the_previous_report(searched, tmp_path, capsys):
    cfg, summary, tmp = searched
    out = tmp_path / "reported" / "report"  # the default: <search.output_dir>/<name>/report
    shutil.copytree(tmp / "out" / "reported" / "report", out)
    assert main(["report", "reported", "--pairs", "learning_rate,units",
                 f"mlflow.tracking_uri={cfg.mlflow.tracking_uri}", "mlflow.experiment=tests",
                 f"search.output_dir={tmp_path}"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert [n for n in written if n.startswith("heatmap_")] == [
        "heatmap_training.learning_rate__model.units.png"]
    assert {p.name for p in out.iterdir()} == set(written)  # the old heat-maps are gone
    assert [p.name for p in out.parent.iterdir()] == ["report"]  # no temporary folder left
    assert written["report.html"] == str(out / "report.html")


def test_unknown_search_and_unknown_pair_are_one_line_config_errors(searched, tmp_path,
                                                                    capsys):
    cfg, _, _ = searched
    with pytest.raises(ConfigError, match=r"no search named 'nope'.*searches there: .*reported"):
        report(cfg.mlflow, "nope", str(tmp_path / "r"))
    with pytest.raises(ConfigError, match=r"'lr'.*varied hyper-parameters are: model.dropout"):
        report(cfg.mlflow, "reported", str(tmp_path / "r"), pairs=[("lr", "model.units")])
    assert not (tmp_path / "r").exists()
    assert main(["report", "nope", f"mlflow.tracking_uri={cfg.mlflow.tracking_uri}",
                 "mlflow.experiment=tests"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sparkdl-tune")]
    assert len(err) == 1 and "no search named 'nope'" in err[0], err


def test_a_search_without_finished_trials_gets_a_report_that_says_so(searched, tmp_path):
    from sparkdl_tune.tracking import store as tracking

    settings = searched[0].mlflow  # the same store: a new SQLite one costs seconds to create
    with tracking.start_run(settings, "doomed", tags={"sparkdl_tune.kind": "search",
                                                     "sparkdl_tune.search": "doomed"}) as run:
        tracking.log_params({"search.metric": "val_loss", "search.mode": "min"})
        for n in range(2):
            tracking.record_run(settings, f"trial-{n + 1:03d}", run.info.run_id,
                                {"training.loss": "mse"}, {}, {"trial_seconds": 0.1},
                                {"sparkdl_tune.kind": "trial", "sparkdl_tune.trial": n},
                                failure="ConfigError: training.loss is 'mse'")
    paths = report(settings, "doomed", str(tmp_path / "r"))
    assert list(paths) == ["report.html"]
    text = (tmp_path / "r" / "report.html").read_text()
    assert "No trial has finished" in text and "Failed trials (2)" in text


def test_importance_measures_and_pairs_parsing():
    trials = [Trial(number=i, ok=True, params={}, objective=float(y), seconds=1.0, epochs=1,
                    test={}, failure=None, run_id=str(i))
              for i, y in enumerate([0.1, 0.2, 0.4, 0.8, 0.9, 0.95])]
    search = Search("s", "r", "val_accuracy", "max", "random", "parallel", {}, trials, None)
    params = [Param("lr", True, True, [1e-4, 2e-4, 1e-3, 3e-3, 1e-2, 5e-2]),  # monotone
              Param("act", False, False, ["a", "a", "a", "b", "b", "b"]),
              Param("noise", True, False, [3.0, 1.0, 2.0, 2.0, 1.0, 3.0])]
    scores = {name: (round(score, 3), kind) for name, score, kind in importance(search, params)}
    assert scores["lr"] == (1.0, "spearman")
    assert scores["act"][1] == "eta2" and scores["act"][0] > 0.8
    assert scores["noise"][0] < 0.3
    assert parse_pairs(["a,b", "c.d,e", "x.y=1"]) == ([("a", "b"), ("c.d", "e")], ["x.y=1"])
    with pytest.raises(ConfigError, match="joined by a comma"):
        parse_pairs(["reported"])
