"""Examples to copy: your own Keras model for ``model.builder`` (see builders.py)."""
