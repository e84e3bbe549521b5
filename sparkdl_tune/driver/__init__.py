"""Driver side: the Spark session, datasets, materialising them for the readers, and where one
training runs (in-process, or a multi-rank job: see :mod:`.launch`)."""
