"""Hyper-parameter search, engine-free except :mod:`.engines`: a point is ``{dotted key: value}``;
algorithms pick points, schedulers stop running trials."""
