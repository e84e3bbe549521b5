"""Search reports from a real search in a real MLflow store, checked down to the browser."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
import time

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
    assert overflowing(source, run, tmp_path) == []  # every column seen at 1280 px
    assert len(images) == len(list(source.parent.glob("*.png")))
    assert all(width > 0 and complete for _, width, complete in images), images
    shot = tmp_path / "screenshot.png"
    subprocess.run([*run, f"--screenshot={shot}", "--window-size=1280,4000", source.as_uri()],
                   capture_output=True, timeout=90, check=True)
    with Image.open(shot) as im:
        assert im.size == (1280, 4000)
        assert len(set(im.convert("L").resize((64, 200)).getdata())) > 20  # not a blank page


def overflowing(page, run: list[str], tmp_path) -> list:
    """What of ``page`` is wider than its place on a 1280 px wide window, as Chromium lays
    it out: ``[header texts, width needed, width there]`` per table, and the page itself
    (``["page", ...]``) when it scrolls sideways."""
    probe = tmp_path / f"fit-{page.name}"
    probe.write_text(page.read_text().replace("</body>", """<script>
window.addEventListener("load", () => { const doc = document.documentElement;
  document.body.setAttribute("data-fit", JSON.stringify([...document.querySelectorAll(
    "table")].map(t => [[...t.querySelectorAll("th")].map(h => h.textContent), t.scrollWidth,
    t.parentElement.clientWidth, t.getBoundingClientRect().right, doc.clientWidth]).concat(
    [["page", doc.scrollWidth, doc.clientWidth, 0, doc.clientWidth]]))); });
</script></body>"""))
    dom = subprocess.run([*run, "--window-size=1280,2000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=90, check=True).stdout
    found = re.search(r'data-fit="([^"]*)"', dom)
    assert found, dom[:2000]
    tables = json.loads(html.unescape(found.group(1)))
    assert tables and all(viewport == 1280 for *_, viewport in tables), tables
    return [[heads, needed, there] for heads, needed, there, right, viewport in tables
            if needed > there or right > viewport]


def wide_search(n_params: int = 14) -> tuple[Search, list[Param]]:
    """Ten finished trials over ``n_params`` hyper-parameters with long keys and values, a
    scheduler's status and rung, cross-validated scores: the widest trial table there is."""
    keys = ["training.learning_rate", "training.batch_size", "training.optimizer",
            "training.weight_decay", "training.label_smoothing", "training.warmup_epochs",
            "model.units", "model.dropout", "model.activation", "model.batch_norm",
            "model.kernel_size", "model.params.units", "model.backbone.unfreeze_fraction",
            "model.l2"]
    keys = sorted(keys)[:n_params]  # as varied_params orders them
    values = {"model.units": "[256, 128, 64]", "model.params.units": "[512, 256]",
              "training.optimizer": "adamw", "model.activation": "leaky_relu"}
    trials = [Trial(number=i, ok=True, objective=0.9 - i / 100, seconds=123.4, epochs=9,
                    params={k: values.get(k, f"{-1.234567e-5 * (i + 1):.9g}") for k in keys},
                    test={}, failure=None, run_id=str(i), cv=(0.0123, 5), rung=3,
                    status="pruned" if i % 2 else "finished", pruned_epoch=3,
                    validation={"val_loss": 0.3456, "val_accuracy": 0.9 - i / 100})
              for i in range(10)]
    search = Search("wide", "0" * 32, "val_accuracy", "max", "tpe", "parallel", {}, trials,
                    None)
    return search, [Param(k, False, False, [t.params[k] for t in trials]) for k in keys]


def test_trial_table_names_columns_short_and_shares_one_past_seven():
    from sparkdl_tune.reporting.page import _CSS, PARAM_COLUMNS, page

    search, params = wide_search(14)
    scores = [("model.l2", 0.9, "eta2"), ("model.dropout", 0.8, "eta2"),  # most important
              ("model.units", 0.7, "eta2"), ("training.learning_rate", 0.6, "spearman")]
    text = page(search, params, scores, {})
    top, after = text.split("finished trials</h2>", 1)[1].split("</table></div>", 1)
    assert top.lstrip().startswith("<div class=scroll><table class=top>")
    heads = re.findall(r"<th[^>]*>(.*?)</th>", top)
    assert len(heads) == 8 + PARAM_COLUMNS  # rank ... rung, 6 columns, the shared one
    assert heads[-1] == "other hyper-parameters (8)"
    # the most important keep a column, in the key order; headers are keys' ends
    assert "<th title='model.l2'>l2</th>" in top
    assert "<th title='model.dropout'>dropout</th>" in top
    assert "<th title='training.learning_rate'>learning_<wbr>rate</th>" in top
    assert "<th title='model.units'>model.<wbr>units</th>" in top  # beside model.params.units
    assert "weight_decay&nbsp;=&nbsp;-1.235e-05" in top  # an entry of the shared column
    legend = after.split("</p>", 1)[0]
    assert "unfreeze_fraction = <code>model.backbone.unfreeze_fraction</code>" in legend
    assert "<td class=word>-1.235e-05</td>" in top and "<td>[256, 128, 64]</td>" in top
    # what lets every column fit: cells wrap, numbers and short words do not, a small font
    for rule in ("td{overflow-wrap:anywhere}", "td.num{text-align:right;font-variant-numeric:"
                 "tabular-nums;white-space:nowrap}", "td.word{white-space:nowrap}",
                 "table.top{font-size:12.5px;width:100%}"):
        assert rule in _CSS, rule
    few = page(*wide_search(PARAM_COLUMNS), [], {})
    assert "other hyper-parameters" not in few and few.count("<th title=") == PARAM_COLUMNS


@pytest.mark.parametrize("n_params", [7, 14])
def test_every_column_of_the_widest_trial_table_shows_at_1280_px(n_params, tmp_path):
    from sparkdl_tune.reporting.page import page

    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser")
                     if shutil.which(n)), None)
    if chromium is None:
        pytest.fail("chromium is not installed: run scripts/setup.sh (apt-get install chromium)")
    search, params = wide_search(n_params)
    source = tmp_path / "report.html"
    source.write_text(page(search, params, [], {}))
    run = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    assert overflowing(source, run, tmp_path) == []


def test_report_lists_one_row_per_trial_number_after_a_resume(searched, tmp_path):
    """A resume runs a trial the clock cancelled again under its number, and may renumber a
    kept trial onto a cancelled one's number: the report shows each number once, as it ends."""
    from sparkdl_tune.reporting.search import load_search
    from sparkdl_tune.tracking import store as tracking

    settings = searched[0].mlflow  # the same store: a new SQLite one costs seconds to create
    runs = {}

    def trial(name, n, score=None, rate=0.01):
        tags = {"sparkdl_tune.kind": "trial", "sparkdl_tune.trial": n}
        summary = {"trial_seconds": 1.0, "epochs_run": 2}
        if score is not None:
            summary.update(objective=score, val_accuracy=score)
        runs[name] = tracking.record_run(
            settings, f"trial-{n + 1:03d}", parent, {"training.learning_rate": rate}, {},
            summary, tags, status=None if score is not None else "KILLED",
            failure=None if score is not None else "cancelled: search.timeout")
        time.sleep(0.01)  # start times in this order

    with tracking.start_run(settings, "resumed", tags={"sparkdl_tune.kind": "search",
                                                      "sparkdl_tune.search": "resumed"}) as run:
        parent = run.info.run_id
        tracking.log_params({"search.metric": "val_accuracy", "search.mode": "max"})
        trial("kept", 0, 0.70, 0.01)
        trial("renumbered", 1, 0.80, 0.02)  # kept, once trial 2: now on cancelled 1's number
        trial("cancelled", 1)  # the clock stopped it; the resume ran it again...
        trial("cancelled again", 2)
        trial("rerun", 2, 0.90, 0.03)  # ...as this one
        trial("cancelled twice", 3, rate=0.04)
        trial("cancelled twice, latest", 3, rate=0.05)
    search = load_search(settings, "resumed")
    assert [(t.number, t.run_id) for t in search.trials] == [
        (0, runs["kept"]), (1, runs["renumbered"]), (2, runs["rerun"]),
        (3, runs["cancelled twice, latest"])]
    report(settings, "resumed", str(tmp_path / "r"))
    text = (tmp_path / "r" / "report.html").read_text()
    assert "<b>4</b><span>trials: 3 finished, 0 failed, 1 cancelled</span>" in text
    top = text.split("finished trials</h2>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr(?: class=best)?><td class=num>(\d+)</td><td class=num>(\d+)</td>",
                      top)
    assert rows == [("1", "3"), ("2", "2"), ("3", "1")]  # rank, trial: one row per number


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
