"""The frozen encoder: load it, batch and run it, its device and precision, encoders packaged on
PyPI (its CPU fast paths are the `pipeline.fast` extra)."""

from __future__ import annotations

import numpy as np


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The cosine between each row of `a` and the same row of `b`."""
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
