"""Every benchmark under bench/ in one run, and one table: metric, anchor, ours, ratio, target.

    .venv/bin/python bench/table.py [--full] [--only warm_trials,data_path,...]

Runs each bench script one after the other (never side by side) with this interpreter, quick
settings by default (``--full``: the scripts' own, longer settings), each writing its rows with
``--json`` (bench/_rows.py). Prints the table (plain text, aligned) and writes it to
out/bench/table.md and out/bench/table.json; each script's output goes to out/bench/<name>.log.
The anchors are the plain tools, measured by the scripts themselves in the same run; what a
profile lacks (Horovod, Petastorm on the current profile) reads "n/a (...)", not a failure.
A script that fails gives one row saying so, and the others still run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "out", "bench")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def scripts(full: bool) -> dict[str, list[str]]:
    """Each bench script's arguments (besides --json), quick or full."""
    petastorm = importlib.util.find_spec("petastorm") is not None
    horovod = importlib.util.find_spec("horovod") is not None
    variants = ["a", *(["b", "c", "d"] if petastorm else []), "f-off", "f-auto",
                *(["e-off", "e-auto"] if horovod and petastorm else [])]
    profile = os.environ.get("PROFILE", "classic")
    data = ["--dataset", "data/fashion-mnist", "--cache", f"/tmp/sparkdl-bench-cache-{profile}",
            "--variants", ",".join(variants)]
    if full:
        return {"prepare_fashion_mnist": [], "data_path": [*data, "--repeat", "3"],
                "warm_trials": [], "warm_ranks": [], "asha_candidates": []}
    return {"prepare_fashion_mnist": ["--no-baseline"],
            "data_path": [*data, "--epochs", "3", "--repeat", "1"],
            "warm_trials": ["--trials", "4", "--epochs", "2", "--rows", "20000"],
            "warm_ranks": ["--trials", "3", "--epochs", "1"],
            "asha_candidates": ["--minutes", "2.5", "--epochs", "6"]}


def run_script(name: str, extra: list[str]) -> list[dict]:
    """Run one bench script; its rows, or one row saying how it failed."""
    path = os.path.join(OUT, f"{name}.json")
    if os.path.exists(path):
        os.unlink(path)
    cmd = [sys.executable, os.path.join(ROOT, "bench", f"{name}.py"), *extra, "--json", path]
    started = time.monotonic()
    with open(os.path.join(OUT, f"{name}.log"), "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        done = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - started
    print(f"# {name}: exit {done.returncode} in {seconds:.0f} s", file=sys.stderr, flush=True)
    if done.returncode == 0 and os.path.exists(path):
        with open(path) as f:
            return json.load(f)["rows"]
    return [{"metric": name, "anchor": "", "ours": None, "unit": "", "ratio": None,
             "target": "", "met": None,
             "limit": f"failed: exit {done.returncode}, see out/bench/{name}.log"}]


def figure(value, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if unit == "s":
        return f"{value:.1f} s"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:.2f}"


def cells(r: dict) -> list[str]:
    met = {True: "met", False: "MISSED", None: "-"}[r["met"]]
    return [r["metric"], r["anchor"] or "-", figure(r["ours"], r.get("unit", "")),
            figure(r["ratio"]), r["target"] or "-", met, r["limit"] or ""]


HEAD = ["metric", "anchor (same run)", "ours", "ours ÷ anchor", "target", "met",
        "what limits it"]


def text_table(rows: list[dict]) -> str:
    """Plain text, columns aligned; the last column left ragged."""
    table = [HEAD, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEAD) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(line, widths)), line[-1]])
                     .rstrip() for line in table)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the scripts' own long settings")
    parser.add_argument("--only", help="comma-separated script names (default: all)")
    args = parser.parse_args()
    plan = scripts(args.full)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in plan]
        if unknown:
            print(f"bench/table.py: unknown scripts {unknown}; pick from {list(plan)}",
                  file=sys.stderr)
            return 2
        plan = {n: plan[n] for n in names}
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(os.path.join(ROOT, "bench", "out"), exist_ok=True)
    started = time.monotonic()
    rows = [r for name, extra in plan.items() for r in run_script(name, extra)]
    minutes = (time.monotonic() - started) / 60
    head = (f"make bench ({'full' if args.full else 'quick'}), profile "
            f"{os.environ.get('PROFILE', 'classic')}, {sys.executable}, {minutes:.1f} min")
    print(head)
    print(text_table(rows))
    with open(os.path.join(OUT, "table.md"), "w") as f:
        f.write(f"{head}\n\n{markdown_table(rows)}\n")
    with open(os.path.join(OUT, "table.json"), "w") as f:
        json.dump({"settings": "full" if args.full else "quick", "minutes": minutes,
                   "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
