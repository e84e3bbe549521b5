"""The row-group readers, by name: ``data.reader`` picks one.

Named as ``"module:Class"`` strings, so this registry imports nothing: the config reads the
valid names from it, and :mod:`sparkdl_tune.executor.readers` imports the chosen reader's
module on the executor, on first use. A new reader is its module in
``sparkdl_tune/executor/readers/`` plus one line here (``tests/test_readers.py`` holds it so).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reader:
    cls: str      # "module:Class" under sparkdl_tune/executor/readers/
    library: str  # the package it reads with
    needs: tuple[str, ...] = ()  # what its library works with (see spec.engines.unusable)


# in order of preference: ``data.reader: auto`` is the first whose library is installed
# (Petastorm on the classic profile, Arrow on the current one, where Petastorm does not import)
READERS = {
    "petastorm": Reader("sparkdl_tune.executor.readers.petastorm:PetastormReader", "petastorm",
                        needs=("pyarrow<15",)),
    "arrow": Reader("sparkdl_tune.executor.readers.arrow:ArrowReader", "pyarrow"),
}

#: the keyword options every reader's constructor takes after ``urls``
OPTIONS = ("workers", "shuffle", "seed", "num_epochs", "cur_shard", "shard_count")
