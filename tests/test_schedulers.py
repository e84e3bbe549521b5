"""Early-stopping schedulers (fifo, asha, hyperband, median) on scripted learning curves."""

from __future__ import annotations

import math
import random
import subprocess
import sys
import threading

import numpy as np
import pytest

from sparkdl_tune.config.schema import PruningSettings
from sparkdl_tune.search.schedulers import Decision, Scheduler, make_scheduler, percentile
from sparkdl_tune.search.schedulers.asha import ASHAScheduler
from sparkdl_tune.search.schedulers.hyperband import HyperBandScheduler, bracket_weights
from sparkdl_tune.search.schedulers.median import MedianScheduler


def asha(mode="max", min_epochs=2, max_epochs=20, rf=3.0):
    return make_scheduler("asha", PruningSettings(min_epochs=min_epochs, reduction_factor=rf),
                          mode, max_epochs, metric="val_accuracy")


def stops(scheduler, reports):
    """Feed ``(trial, epoch, value)`` reports; the trials told to stop, in order."""
    return [t for t, e, v in reports if scheduler.report(t, e, v).stop]


# -- helpers and the factory ------------------------------------------------------------------


@pytest.mark.parametrize("values", [[1.0], [0.4, 0.5], [3, 1, 2, 5, 4], [0.1, 0.1, 0.9, 0.2]])
@pytest.mark.parametrize("q", [0, 50, 100 * (1 - 1 / 3), 75, 100])
def test_percentile_matches_numpy(values, q):
    assert percentile(values, q) == pytest.approx(float(np.nanpercentile(values, q)))


def test_make_scheduler_names_and_settings():
    pruning = PruningSettings(min_epochs=2, reduction_factor=3.0, min_trials=4)
    assert type(make_scheduler("fifo", pruning, "max", 20)) is Scheduler
    a = make_scheduler("asha", pruning, "min", 20, metric="val_loss")
    assert isinstance(a, ASHAScheduler) and a.name == "asha"
    assert (a.mode, a.metric, a.milestones("t")) == ("min", "val_loss", [2, 6, 18])
    h = make_scheduler("hyperband", pruning, "max", 20)
    assert isinstance(h, HyperBandScheduler) and h.grace_periods == [2, 6, 18]
    m = make_scheduler("median", pruning, "max", 20)
    assert isinstance(m, MedianScheduler) and (m.min_epochs, m.min_trials) == (2, 4)
    assert make_scheduler("asha", None, "max", 9).milestones("t") == [1, 3]
    with pytest.raises(ValueError, match="scheduler"):
        make_scheduler("pbt", pruning, "max", 20)
    with pytest.raises(ValueError, match="mode"):
        make_scheduler("asha", pruning, "maximize", 20)
    with pytest.raises(ValueError, match="epoch"):
        asha().report("a", 0, 0.5)


def test_package_imports_no_heavy_library():
    code = ("import sys, sparkdl_tune.search.schedulers as s; "
            "s.make_scheduler('hyperband', None, 'max', 9).report('a', 1, 0.5); "
            "heavy = [m for m in ('tensorflow', 'pyspark', 'mlflow', 'hyperopt') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- fifo -------------------------------------------------------------------------------------


def test_fifo_never_stops_not_even_on_nan():
    fifo = make_scheduler("fifo", PruningSettings(), "max", 10)
    for epoch, value in enumerate([0.9, 0.1, float("nan"), float("-inf"), -1e9], start=1):
        assert fifo.report("a", epoch, value) == Decision(stop=False)
        assert fifo.report(f"t{epoch}", 1, -value) == Decision(stop=False)
    assert fifo.milestones("a") == [] and fifo.rung_reached("a", 10) is None
    fifo.complete("a")


# -- ASHA -------------------------------------------------------------------------------------

# six trials reach rung 2 in this order; the cutoff is the 66.7th percentile of those before:
# a first (goes on); b 0.4 < 0.5; c 0.6 >= 0.4667; d 0.45 < 0.5333; e 0.55 >= 0.5;
# f 0.5 < 0.5333
RUNG2 = [("a", 0.5), ("b", 0.4), ("c", 0.6), ("d", 0.45), ("e", 0.55), ("f", 0.5)]


@pytest.mark.parametrize("mode", ["max", "min"])
def test_asha_rung_cutoff_top_third(mode):
    sign = 1 if mode == "max" else -1
    s = asha(mode)
    for trial, _ in RUNG2:  # epoch 1 is below the first rung: nobody is judged
        assert s.report(trial, 1, sign * 0.1) == Decision(stop=False)
    decisions = {t: s.report(t, 2, sign * v) for t, v in RUNG2}
    assert [t for t, d in decisions.items() if d.stop] == ["b", "d", "f"]
    assert all(d.rung == 2 for d in decisions.values())
    assert decisions["a"] == Decision(stop=False, rung=2)
    side = "below" if mode == "max" else "above"
    assert decisions["d"].reason == (
        f"val_accuracy {sign * 0.45:.4f} at epoch 2 is {side} the cutoff {sign * 0.5333:.4f} "
        "of rung 2 (top 1/3 of 3 trials)")
    assert s.snapshot()[2] == {t: pytest.approx(sign * v) for t, v in RUNG2}
    assert s.snapshot()[6] == {} and s.snapshot()[18] == {}


def test_asha_first_at_each_rung_goes_on_and_ties_go_on():
    s = asha()
    for epoch in range(1, 20):  # alone: never stopped, whatever its values
        assert not s.report("lonely", epoch, 0.01).stop
    assert [s.report(t, 2, 0.7).stop for t in "xyz"] == [False, False, False]  # equal: not below


def test_asha_later_rungs_and_judging_at_a_later_epoch():
    s = asha()
    script = [("a", 2, 0.5), ("b", 2, 0.6), ("c", 2, 0.7),  # all go on at rung 2
              ("a", 6, 0.7), ("b", 6, 0.65),                # b below the cutoff 0.7 of rung 6
              ("c", 3, 0.8), ("c", 7, 0.67)]  # c: first report >= 6 is epoch 7; cutoff 0.6833
    decisions = [(t, e, s.report(t, e, v)) for t, e, v in script]
    assert [(t, e) for t, e, d in decisions if d.stop] == [("b", 6), ("c", 7)]
    assert [d.rung for _, _, d in decisions] == [2, 2, 2, 6, 6, None, 6]
    assert s.snapshot()[6] == {"a": 0.7, "b": 0.65, "c": 0.67}
    late = asha()
    assert late.report("x", 2, 0.9).rung == 2
    d = late.report("y", 3, 0.1)  # skipped epoch 2: judged at rung 2 with its epoch-3 value
    assert d.stop and d.rung == 2 and "at epoch 3" in d.reason and "rung 2" in d.reason


def test_asha_milestones_and_rung_reached():
    s = asha()
    assert s.milestones("any") == [2, 6, 18]
    assert [s.rung_reached("any", n) for n in (0, 1, 2, 5, 6, 17, 18, 20)] == \
        [None, None, 2, 2, 6, 6, 18, 18]
    assert asha(min_epochs=1, max_epochs=27).milestones("t") == [1, 3, 9]  # 27 is not < 27
    assert asha(min_epochs=1, max_epochs=28).milestones("t") == [1, 3, 9, 27]
    assert asha(min_epochs=1, max_epochs=10, rf=2.5).milestones("t") == [1, 3, 7]  # rounded up
    assert asha(min_epochs=5, max_epochs=5).milestones("t") == []


@pytest.mark.parametrize("name", ["asha", "hyperband", "median"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_value_stops(name, bad):
    s = make_scheduler(name, PruningSettings(min_epochs=1), "max", 20, metric="val_loss")
    assert not s.report("a", 1, 0.5).stop
    d = s.report("b", 1, bad)
    assert d.stop and d.reason.startswith("val_loss is ")
    assert ("NaN" in d.reason) == math.isnan(bad)
    snap = s.snapshot()  # a NaN is never recorded
    tables = snap["rungs"] if name == "hyperband" else [snap] if name == "asha" else []
    assert all("b" not in rec for table in tables for rec in table.values())
    if name == "median":
        assert snap == {"a": {1: 0.5}}


def test_duplicate_reports_are_counted_once_and_answered_the_same():
    s = asha()
    s.report("a", 2, 0.9)
    first = s.report("b", 2, 0.1)
    assert first.stop
    assert s.report("b", 2, 0.95) == first  # a resent report: same answer, value ignored
    assert s.report("a", 2, 0.0) == Decision(stop=False, rung=2)
    assert s.snapshot()[2] == {"a": 0.9, "b": 0.1}
    m = make_scheduler("median", PruningSettings(min_trials=1), "max", 10)
    m.report("a", 1, 0.5)
    m.report("a", 1, 0.1)
    assert m.snapshot() == {"a": {1: 0.5}}


# -- Hyperband --------------------------------------------------------------------------------


def test_hyperband_brackets_grace_periods_and_weights():
    h = HyperBandScheduler("max", min_epochs=1, max_epochs=27)
    assert h.grace_periods == [1, 3, 9]
    assert [b.milestones for b in h.brackets] == [[1, 3, 9], [3, 9], [9]]
    assert h.weights == [9, 5, 3] == bracket_weights(3, 3.0)
    h2 = HyperBandScheduler("max", min_epochs=2, max_epochs=20)
    assert h2.grace_periods == [2, 6, 18]
    one = HyperBandScheduler("max", min_epochs=4, max_epochs=10)  # 12 is not < 10: one bracket
    assert one.grace_periods == [4] and one.weights == [1]
    assert [one.bracket_of(str(i)) for i in range(5)] == [0] * 5
    assert bracket_weights(2, 3.0) == [3, 2]
    assert bracket_weights(2, 2.0) == [2, 2] and bracket_weights(1, 3.0) == [1]


def test_hyperband_assigns_new_trials_by_arrival_order():
    h = HyperBandScheduler("max", min_epochs=1, max_epochs=27)
    order = [h.bracket_of(f"t{i}") for i in range(34)]
    assert order[:8] == [0, 1, 0, 2, 0, 1, 0, 2]
    assert [order[:17].count(s) for s in range(3)] == [9, 5, 3]
    assert [order[17:].count(s) for s in range(3)] == [9, 5, 3]
    # the first sight counts, whichever method it is; later calls do not move a trial
    g = HyperBandScheduler("max", min_epochs=1, max_epochs=27)
    assert g.milestones("a") == [1, 3, 9]
    assert not g.report("b", 1, 0.5).stop
    assert g.rung_reached("c", 5) == 3 and g.milestones("c") == [1, 3, 9]
    assert g.milestones("b") == [3, 9] and g.rung_reached("b", 2) is None
    assert g.rung_reached("b", 4) == 3
    assert g.report("d", 9, float("nan")).stop and g.bracket_of("d") == 2
    assert [g.bracket_of(t) for t in "abcd"] == [0, 1, 0, 2]


def test_hyperband_judges_within_the_bracket_only():
    h = HyperBandScheduler("max", min_epochs=1, max_epochs=27)
    # t0, t2 -> bracket 0 (rungs 1, 3, 9); t1 -> bracket 1 (rungs 3, 9)
    assert h.report("t0", 1, 0.9) == Decision(stop=False, rung=1)
    assert h.report("t1", 1, 0.1) == Decision(stop=False)  # no rung at 1 in bracket 1
    assert h.report("t2", 1, 0.5).stop  # below t0's 0.9 at rung 1 of bracket 0
    assert h.report("t1", 3, 0.1) == Decision(stop=False, rung=3)  # first at its rung 3
    assert not h.report("t0", 3, 0.95).stop  # first at rung 3 of bracket 0: t1 not counted
    snap = h.snapshot()
    assert snap["brackets"] == {"t0": 0, "t1": 1, "t2": 0}
    assert snap["rungs"][0] == {1: {"t0": 0.9, "t2": 0.5}, 3: {"t0": 0.95}, 9: {}}
    assert snap["rungs"][1] == {3: {"t1": 0.1}, 9: {}}


# -- median -----------------------------------------------------------------------------------

CURVES = {  # val_accuracy per epoch
    "a": [0.50, 0.60, 0.70, 0.72],
    "b": [0.40, 0.55, 0.65],
    "c": [0.30, 0.90, 0.20],  # best by epoch 3 is 0.90
}


def median(mode="max", min_epochs=1, min_trials=3):
    pruning = PruningSettings(min_epochs=min_epochs, min_trials=min_trials)
    return make_scheduler("median", pruning, mode, 10, metric="val_accuracy")


def feed(s, curves, sign=1):
    for trial, curve in curves.items():
        for epoch, value in enumerate(curve, start=1):
            s.report(trial, epoch, sign * value)


@pytest.mark.parametrize("mode", ["max", "min"])
def test_median_stops_below_the_median_of_others_best_so_far(mode):
    sign = 1 if mode == "max" else -1
    s = median(mode)
    feed(s, CURVES, sign)
    # epoch 1: others' best 0.5, 0.4, 0.3 -> median 0.4
    assert not s.report("d", 1, sign * 0.40).stop  # equal: not worse
    # epoch 2: others' best 0.6, 0.55, 0.9 -> 0.6; d's best is max(0.4, 0.58)
    d2 = s.report("d", 2, sign * 0.58)
    assert d2.stop and d2.rung is None
    side = ("0.5800", "0.6000") if mode == "max" else ("-0.5800", "-0.6000")
    assert d2.reason == (f"val_accuracy best {side[0]} by epoch 2 is worse than the median "
                         f"{side[1]} of 3 other trials' best by epoch 2")
    # epoch 3: others' best 0.70, 0.65, 0.90 -> 0.70; e's best so far 0.75 (epoch 1) is fine
    assert not s.report("e", 1, sign * 0.75).stop
    assert not s.report("e", 3, sign * 0.10).stop
    # epoch 4: only a reached it (plus e, d) -> fewer than min_trials others: no judgement
    assert not s.report("f", 4, sign * 0.01).stop
    assert s.milestones("d") == [] and s.rung_reached("d", 5) is None


def test_median_waits_for_min_trials_and_min_epochs():
    s = median(min_trials=3)
    feed(s, {"a": [0.9, 0.9], "b": [0.9, 0.9]})
    assert not s.report("c", 1, 0.0).stop  # 2 others at epoch 1: too few
    assert s.report("d", 1, 0.0).stop  # now a, b, c: median 0.9
    late = median(min_epochs=3, min_trials=1)
    feed(late, {"a": [0.9, 0.9, 0.9]})
    assert [late.report("b", e, 0.1).stop for e in (1, 2, 3)] == [False, False, True]
    one = median(min_trials=1)  # others that did not report epoch t are not counted
    feed(one, {"a": [0.9]})
    assert not one.report("b", 2, 0.1).stop
    assert one.report("c", 1, 0.1).stop


# -- replay and threads -----------------------------------------------------------------------


def _scripted_run(s, n_trials, max_epochs, seed, start_hook=None):
    """Interleave trials like parallel workers; a stopped trial reports no more.

    Returns each trial's recorded curve (what MLflow would hold).
    """
    rng = random.Random(seed)
    quality = {f"t{i:02d}": rng.uniform(0.2, 0.9) for i in range(n_trials)}
    curves: dict[str, list[float]] = {t: [] for t in quality}
    running = []
    pending = list(quality)
    while pending or running:
        if pending and (len(running) < 4 or not running):
            trial = pending.pop(0)
            if start_hook:
                start_hook(trial)
            running.append(trial)
        trial = rng.choice(running)
        epoch = len(curves[trial]) + 1
        value = quality[trial] * (1 - 0.5 ** epoch) + rng.uniform(-0.05, 0.05)
        if rng.random() < 0.02:
            value = float("nan")
        curves[trial].append(value)
        if s.report(trial, epoch, value).stop or epoch == max_epochs:
            s.complete(trial)
            running.remove(trial)
    return curves


def _replay(s, curves, start_hook=None):
    for trial, curve in curves.items():  # trial order, decisions ignored
        if start_hook:
            start_hook(trial)
        for epoch, value in enumerate(curve, start=1):
            s.report(trial, epoch, value)
        s.complete(trial)


@pytest.mark.parametrize("name", ["asha", "hyperband", "median"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_replay_rebuilds_the_same_tables(name, seed):
    pruning = PruningSettings(min_epochs=1, reduction_factor=3.0, min_trials=3)
    original = make_scheduler(name, pruning, "max", 20)
    hook = original.milestones if name == "hyperband" else None  # the driver, at trial start
    curves = _scripted_run(original, 30, 20, seed, start_hook=hook)
    assert any(len(c) < 20 for c in curves.values())  # some were stopped
    for _ in range(2):
        again = make_scheduler(name, pruning, "max", 20)
        _replay(again, curves, start_hook=again.milestones if name == "hyperband" else None)
        assert again.snapshot() == original.snapshot()


def test_threads_report_at_once():
    schedulers = [make_scheduler(n, PruningSettings(min_epochs=1), "min", 12)
                  for n in ("asha", "hyperband", "median")]
    errors = []

    def worker(w):
        try:
            rng = random.Random(w)
            for i in range(20):
                trial = f"w{w}-{i}"
                for epoch in range(1, 13):
                    value = rng.random()
                    for s in schedulers:
                        s.report(trial, epoch, value)
                        s.report(trial, epoch, value)  # duplicates from a retry
                for s in schedulers:
                    s.complete(trial)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    a, h, m = (s.snapshot() for s in schedulers)
    assert [len(a[r]) for r in (1, 3, 9)] == [160, 160, 160]
    fresh = HyperBandScheduler("min", min_epochs=1, max_epochs=12)
    expected = [fresh.bracket_of(str(i)) for i in range(160)]
    assert sorted(h["brackets"].values()) == sorted(expected)  # the first 160 arrivals
    for trial, bracket in h["brackets"].items():  # every trial recorded once at each rung
        assert [r for r, rec in h["rungs"][bracket].items() if trial in rec] == \
            schedulers[1].milestones(trial)
    assert len(m) == 160 and all(len(c) == 12 for c in m.values())
