"""bench/table.py and bench/_rows.py on fabricated rows: the met logic and the table's layout
(no benchmark runs here, and no measured figure is asserted)."""

from __future__ import annotations

import importlib.util
import os
import sys

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")


def _load(name):
    sys.path.insert(0, BENCH)
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}",
                                                      os.path.join(BENCH, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(BENCH)


def test_row_decides_met_from_the_target_and_keeps_the_limit_only_when_missed():
    rows = _load("_rows")
    above = rows.row("ratio", 0.85, ">= 0.80", "plain 0.78", 0.78, "slow start")
    below = rows.row("ratio", 0.37, ">= 0.80", "plain 0.78", 0.78, "slow start")
    seconds = rows.row("launch", 2.5, "<= 3 s", "barrier 1.0 s", 1.0, "launch", unit="s")
    missing = rows.row("2 ranks", None, ">= 0.80", "n/a (no horovod on this profile)")
    assert (above["met"], above["limit"]) == (True, "")
    assert (below["met"], below["limit"]) == (False, "slow start")
    assert abs(below["ratio"] - 0.37 / 0.78) < 1e-9
    assert (seconds["met"], seconds["ratio"]) == (True, 2.5)
    assert (missing["met"], missing["ratio"]) == (None, None)


def test_table_aligns_columns_and_marks_met_missed_and_na():
    rows, table = _load("_rows"), _load("table")
    fabricated = [rows.row("parallel trials", 0.37, ">= 0.80", "plain 0.78", 0.78, "a reason"),
                  rows.row("launch after the first", 2.0, "<= 3 s", "barrier 1.0 s", 1.0,
                           unit="s"),
                  rows.row("2 ranks", None, ">= 0.80", "n/a (no horovod on this profile)")]
    lines = table.text_table(fabricated).splitlines()
    assert len(lines) == 4
    met_column = lines[0].index("met ")
    assert [line[met_column:].split()[0] for line in lines] == ["met", "MISSED", "met", "-"]
    assert "0.37" in lines[1] and "0.47" in lines[1] and lines[1].endswith("a reason")
    assert "2.0 s" in lines[2] and "n/a (no horovod on this profile)" in lines[3]
    markdown = table.markdown_table(fabricated).splitlines()
    assert len(markdown) == 5 and all(m.count("|") == 8 for m in markdown)
