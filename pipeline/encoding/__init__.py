"""The frozen encoder: load it, batch and run it, its device and precision, encoders packaged on
PyPI (its CPU fast paths are the `pipeline.fast` extra)."""
