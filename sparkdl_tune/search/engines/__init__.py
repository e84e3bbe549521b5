"""Search engines: the modules that drive a search library (hyperopt today)."""
