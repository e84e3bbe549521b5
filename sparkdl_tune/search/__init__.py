"""Hyper-parameter search: a point is ``{dotted key: value}``; algorithms pick points,
schedulers stop running trials. Only :mod:`.engines.hyperopt` imports hyperopt, but hyperopt's
trial documents are still read in the monitor, the live runs and the package's algorithms
(the plain trial record of :mod:`sparkdl_tune.spec.trial` is where they are headed)."""
