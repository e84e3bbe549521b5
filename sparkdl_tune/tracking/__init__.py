"""MLflow: the one place that knows the store, the tag names and the run layout, and reads a
recorded search back (resume)."""
