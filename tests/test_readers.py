"""The row-group readers (``data.reader``: petastorm, arrow) on real Parquet: the registry is the
one list of readers, each reader shards, passes and shuffles alike, and the stream built on it
selects features and caches alike; a training reaches the same accuracy with either."""

from __future__ import annotations

import importlib
import inspect
import pathlib
import typing

import numpy as np
import pytest
from conftest import train_overrides

from sparkdl_tune.executor import readers

READERS = [pytest.param(n, marks=pytest.mark.requires_petastorm) if n == "petastorm" else n
           for n in sorted(readers.READERS)]
WIDTH, GROUP_ROWS, ROWS, GROUPS = 3, 10, 95, 20  # 10 row groups a file, 1 short


def test_the_registry_is_the_one_list_of_readers():
    """A reader is its module plus its registry line: each entry resolves to a class with the
    interface, every module in the folder is registered, and the config's valid names are
    the registry's (no second list to edit)."""
    from sparkdl_tune.config.loader import _fields
    from sparkdl_tune.config.schema import DataSettings

    folder = pathlib.Path(readers.__file__).parent
    modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    assert modules == {v.cls.split(":")[0].rpartition(".")[2] for v in readers.READERS.values()}
    for name in readers.READERS:
        cls = readers.reader_class(name)
        assert callable(getattr(cls, "dataset", None)) and callable(getattr(cls, "close", None))
        params = inspect.signature(cls.__init__).parameters
        assert all(params[o].kind is inspect.Parameter.KEYWORD_ONLY for o in readers.OPTIONS), \
            name
        # the module imports nothing heavy at import time (its library is loaded on use)
        module = importlib.import_module(cls.__module__)
        assert module.__name__.startswith("sparkdl_tune.executor.readers.")
    assert typing.get_args(_fields(DataSettings)["reader"]) == ("auto", *readers.READERS)
    with pytest.raises(ValueError, match="the readers are: petastorm, arrow"):
        readers.reader_class("feather")


def test_an_unknown_reader_exits_2_with_one_line_naming_the_readers(capsys):
    from sparkdl_tune.cli import main

    code = main(["train", "conf/jobs/fashion_mlp.yaml", "data.reader=arow"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sparkdl-tune:")]
    assert code == 2 and len(err) == 1, err
    assert "'data.reader' is 'arow', not one of: auto, petastorm, arrow" in err[0]
    assert "did you mean 'arrow'?" in err[0]


@pytest.fixture(scope="module")
def parquet_files(tmp_path_factory):
    """Two Parquet files as the driver materialises them (a ``features`` list<float> column
    and an int ``label``), in row groups of 10 rows; row ``i`` has features
    ``[i, i + 0.25, i + 0.5]`` and label ``i``, so every delivered row names itself."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("rowgroups")
    urls = []
    for f, rows in enumerate((range(0, ROWS), range(ROWS, 2 * ROWS))):
        ids = np.array(rows, dtype=np.float32)
        feats = np.stack([ids, ids + 0.25, ids + 0.5], axis=1).ravel()
        offsets = pa.array(np.arange(0, len(feats) + 1, WIDTH, dtype=np.int32))
        table = pa.table({"features": pa.ListArray.from_arrays(offsets, pa.array(feats)),
                          "label": pa.array(np.array(rows, dtype=np.int32))})
        path = folder / f"part-{f}.parquet"
        pq.write_table(table, path, row_group_size=GROUP_ROWS)
        urls.append(f"file://{path}")
    return urls


def _passes(name, urls, passes, *, endless=False, **options):
    """``passes`` passes of a reader as lists of row groups (their label arrays), read as the
    stream reads them: the validation split iterates a one-pass dataset anew for each pass,
    the training split reads one endless dataset (cut here after each pass's groups)."""
    # one worker: Petastorm's pool delivers in completion order, which would blur where a pass
    # ends; the Arrow reader delivers in pass order with any number of workers
    options = {"workers": 1 if name == "petastorm" else 2, "shuffle": False, "seed": None,
               "num_epochs": None if endless else 1, "cur_shard": None, "shard_count": None,
               **options}
    reader = readers.make_reader(urls, name=name, **options)
    try:
        ds = reader.dataset()
        if endless:
            it = ds.as_numpy_iterator()
            per = GROUPS // (options["shard_count"] or 1)
            got = [[next(it) for _ in range(per)] for _ in range(passes)]
        else:
            got = [list(ds.as_numpy_iterator()) for _ in range(passes)]
    finally:
        reader.close()
    for x, y in (group for one in got for group in one):
        assert x.dtype == np.float32 and x.shape == (len(y), WIDTH)
        np.testing.assert_array_equal(x[:, 0], y)  # features and label of the same rows
        np.testing.assert_allclose(x[:, 2] - x[:, 0], 0.5)
    return [[y for _, y in one] for one in got]


# Petastorm's thread pool can end a one-pass reader's pass before its last row groups arrive
# (get_results sees every worker idle and the ventilator done while a group is still on its
# way), and a reset() for the next pass races the same way: over 15 single passes of one
# rank's 90 rows (2 shards of 20 row groups), stock make_batch_reader delivered 75 rows 3-4
# times. Such a pass is short, so these exactness checks fail for it now and then.
PETASTORM_RACE = pytest.mark.xfail(reason="Petastorm's pool can end a pass before its last "
                                          "row groups arrive", strict=False)
EXACT = [pytest.param("petastorm", marks=[PETASTORM_RACE, pytest.mark.requires_petastorm]),
         "arrow"]


@pytest.mark.parametrize("name", EXACT)
def test_ranks_read_every_row_once(parquet_files, name):
    """The exact-validation guarantee: the shards of two ranks are disjoint whole row groups,
    together every row once."""
    shards = [_passes(name, parquet_files, 1, cur_shard=r, shard_count=2)[0] for r in (0, 1)]
    assert sorted(np.concatenate([*shards[0], *shards[1]])) == list(range(2 * ROWS))
    assert len(shards[0]) == len(shards[1]) == GROUPS // 2


@pytest.mark.parametrize("name", EXACT)
def test_every_pass_of_a_one_pass_reader_reads_the_shard_again(parquet_files, name):
    passes = _passes(name, parquet_files, 4, cur_shard=1, shard_count=2)
    assert all(sorted(np.concatenate(p)) == sorted(np.concatenate(passes[0])) for p in passes)
    assert len(passes[0]) == GROUPS // 2


@pytest.mark.parametrize("name", READERS)
def test_shuffled_passes_draw_new_row_group_orders_from_the_seed(parquet_files, name):
    first = _passes(name, parquet_files, 3, endless=True, shuffle=True, seed=5)
    orders = [[int(g[0]) for g in p] for p in first]
    assert all(sorted(o) == sorted(orders[0]) for o in orders)  # the same groups every pass
    assert len({tuple(o) for o in orders}) == 3  # in a new order each pass
    assert orders != [sorted(orders[0])] * 3
    again = _passes(name, parquet_files, 3, endless=True, shuffle=True, seed=5)
    assert [[int(g[0]) for g in p] for p in again] == orders  # the seed decides


@pytest.mark.parametrize("cache", ["on", "off"])
@pytest.mark.parametrize("name", EXACT)
def test_the_stream_selects_features_and_caches_alike(parquet_files, name, cache):
    """Through :class:`stream`: a feature subset keeps its columns of every row, and each
    validation pass (cached or re-read) is the whole shard."""
    from sparkdl_tune.config.model_spec import ModelSpec, TrainingSpec
    from sparkdl_tune.executor.stream import stream
    from sparkdl_tune.spec.data import SplitFiles, TrainingData
    from sparkdl_tune.spec.job import TrainJob

    split = SplitFiles("file:///unused", parquet_files, 2 * ROWS)
    data = TrainingData({"validation": split}, WIDTH, None, "regression",
                        feature_names=("a", "b", "c")).select(["a", "c"])
    job = TrainJob(ModelSpec(task="regression"), TrainingSpec(batch_size=16), data,
                   reader=name, in_memory_cache=cache)
    with stream(job, "validation", 0, 1, per_pass=True) as (ds, cached):
        assert cached is (cache == "on")
        for _ in range(2):
            x, y = (np.concatenate(p) for p in zip(*ds.as_numpy_iterator()))
            assert x.shape == (2 * ROWS, 2) and sorted(y) == list(range(2 * ROWS))
            np.testing.assert_allclose(x, np.stack([y, y + 0.5], axis=1))


@pytest.mark.slow
@pytest.mark.requires_petastorm
def test_both_readers_train_to_the_same_accuracy(spark, tiny_tabular, tmp_path):
    """One training per reader on the same separable data, features subset, 2 epochs."""
    from sparkdl_tune.config.loader import load_config
    from sparkdl_tune.driver.train import fit, prepare_inputs

    accuracy = {}
    for name in sorted(readers.READERS):
        cfg = load_config(None, overrides=train_overrides(
            tiny_tabular, tmp_path, data__reader=name, training__epochs=4,
            training__batch_size=16, data__feature_columns='["f1","f2","f3"]'))
        result = fit(cfg, prepare_inputs(cfg, spark), verbose=0)
        assert result.epochs_run == 4
        accuracy[name] = result.test_metrics["test_accuracy"]
    assert min(accuracy.values()) > 0.8, accuracy
    assert abs(accuracy["arrow"] - accuracy["petastorm"]) <= 0.1, accuracy
