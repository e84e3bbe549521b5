"""sparkdl_tune: train and tune Keras models on Parquet data with Spark."""
__version__ = "0.1.0"
