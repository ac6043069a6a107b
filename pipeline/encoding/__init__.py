"""The frozen encoder: load it, batch and run it, its fast kernels, encoders packaged on PyPI."""
