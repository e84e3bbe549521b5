"""A subset as one include/exclude choice per column against one categorical over every allowed
subset, under Optuna's TPE (issue 23): does the model-based sampler learn which column matters?

    .venv/bin/python bench/subset_encoding.py [--columns 8] [--trials 40] [--seeds 10]

A synthetic loss of the chosen columns only (no training, a few seconds on 2 cores):
``1`` for each of two informative columns left out, plus ``0.05`` per column chosen, so the
best subset is exactly the two informative columns (loss 0.10). Each encoding runs the same
seeds; the table shows the mean and worst best-loss after ``--trials`` trials and how many
seeds found the best subset. ``per-column`` is what ``search.engine: optuna`` does
(:mod:`sparkdl_tune.search.engines.optuna_space`); ``one-index`` is one categorical over the
subsets' indices, hyperopt's encoding today.
"""

from __future__ import annotations

import argparse
import statistics


def loss(chosen: tuple[str, ...], columns: list[str]) -> float:
    informative = (columns[2], columns[5])
    return sum(c not in chosen for c in informative) + 0.05 * len(chosen)


def best(encoding: str, columns: list[str], trials: int, seed: int) -> float:
    import optuna

    from sparkdl_tune.search.dimensions import Subset
    from sparkdl_tune.search.engines import load, optuna_space
    from sparkdl_tune.search.space import SearchSpace

    space = SearchSpace({"data.feature_columns": Subset(columns)})
    (dim,) = space.dimensions
    engine = load("optuna")
    study = optuna.create_study(sampler=engine.algorithm("tpe").sampler(seed))
    for _ in range(trials):
        trial = study.ask()
        if encoding == "per-column":
            chosen = space.decode(optuna_space.suggest(trial, space))["data.feature_columns"]
        else:
            chosen = dim.spec.real(trial.suggest_categorical("subset",
                                                             list(range(dim.spec.size))))
        study.tell(trial, loss(chosen, columns))
    return study.best_value


def main() -> None:
    import optuna

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, default=8)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    columns = [f"x{i}" for i in range(args.columns)]
    print(f"{args.columns} columns ({2 ** args.columns - 1} subsets), {args.trials} TPE trials, "
          f"{args.seeds} seeds; the best possible loss is 0.10")
    print(f"{'encoding':<12}{'mean best':>10}{'worst':>8}{'found':>8}")
    for encoding in ("per-column", "one-index"):
        got = [best(encoding, columns, args.trials, s) for s in range(args.seeds)]
        found = sum(abs(g - 0.10) < 1e-9 for g in got)
        print(f"{encoding:<12}{statistics.mean(got):>10.3f}{max(got):>8.2f}"
              f"{found:>5}/{args.seeds}")


if __name__ == "__main__":
    main()
