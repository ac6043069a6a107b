"""The saved classifier: a logistic regression's numbers in ``classifier.npz``, never a pickle.

A joblib/pickle file runs code when it is loaded, so the pipeline stores only arrays (weights,
bias, optional standardisation) and loads them with ``allow_pickle=False`` after checking the
SHA-256 recorded in ``model.json``. Scoring needs numpy alone, so predict starts fast and a
classifier does not depend on the scikit-learn version that trained it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import PipelineError
from pipeline.io import atomic_path, checked_file, read_json, sha256_file

MODELS_ROOT = Path("models")
PROBE_FILE = "classifier.npz"
# what loading a classifier reads from its model.json beside the classifier entry
MODEL_KEYS = ("encoder", "weights_sha256", "features", "labels")


@dataclass
class LinearProbe:
    """A fitted logistic regression as arrays: z = ((x - mean) / scale) @ coef.T + intercept.

    Two classes: one row of weights, p(class 1) = sigmoid(z). K classes: K rows, softmax(z).
    """

    coef: np.ndarray  # (1, d) for two classes, (K, d) for K > 2
    intercept: np.ndarray  # (1,) or (K,)
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.coef = np.atleast_2d(np.asarray(self.coef, dtype=np.float64))
        self.intercept = np.atleast_1d(np.asarray(self.intercept, dtype=np.float64))

    @classmethod
    def from_sklearn(cls, model: Any) -> LinearProbe:
        """From a fitted `LogisticRegression`, or a pipeline of `StandardScaler` and one."""
        steps = list(model.named_steps.values()) if hasattr(model, "named_steps") else [model]
        *scalers, logreg = steps
        scaler = scalers[0] if scalers else None
        return cls(
            coef=logreg.coef_,
            intercept=logreg.intercept_,
            mean=None if scaler is None else scaler.mean_.astype(np.float64),
            scale=None if scaler is None else scaler.scale_.astype(np.float64),
        )

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, one row per row of `x` (n x K), like scikit-learn's."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.coef.shape[1]:
            raise PipelineError(
                f"features have shape {x.shape}, the classifier expects "
                f"{self.coef.shape[1]} columns"
            )
        if self.mean is not None:
            x = (x - self.mean) / self.scale
        z = x @ self.coef.T + self.intercept
        if len(self.coef) == 1:
            p_one = np.exp(-np.logaddexp(0.0, -z[:, 0]))
            return np.column_stack([1.0 - p_one, p_one])
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> str:
        """Write the arrays atomically; return the file's SHA-256."""
        arrays = {"coef": self.coef, "intercept": self.intercept}
        if self.mean is not None:
            arrays |= {"mean": self.mean, "scale": self.scale}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
            return sha256_file(tmp)

    @classmethod
    def load(cls, path: Path) -> LinearProbe:
        """Read arrays written by `save` (no pickles allowed)."""
        with np.load(path, allow_pickle=False) as arrays:
            return cls(
                coef=arrays["coef"],
                intercept=arrays["intercept"],
                mean=arrays.get("mean"),
                scale=arrays.get("scale"),
            )


def load_probe(model_dir: Path) -> tuple[LinearProbe, dict[str, Any]]:
    """The classifier in `model_dir` and its model.json, after checking the recorded SHA-256."""
    model_dir = Path(model_dir)
    if not (model_dir / "model.json").is_file():
        raise PipelineError(f"no trained classifier in {model_dir}; run `make train` first")
    meta = read_json(model_dir / "model.json")
    try:
        path, expected = model_dir / meta["classifier"]["file"], meta["classifier"]["sha256"]
    except (KeyError, TypeError):
        raise PipelineError(f"{model_dir / 'model.json'} has no classifier entry") from None
    checked_file(path, expected, "run `make train` again")
    try:
        probe = LinearProbe.load(path)
    except (ValueError, KeyError, OSError) as err:
        raise PipelineError(f"{path} is not a classifier file: {err}") from None
    missing = [key for key in MODEL_KEYS if key not in meta]
    if missing:
        raise PipelineError(
            f"{model_dir / 'model.json'} lacks {', '.join(missing)} (made by hand, or by an old "
            "sst2-probe); run `make train` again"
        )
    return probe, meta


def latest_model(root: Path = MODELS_ROOT) -> Path:
    """The folder of the most recently trained classifier under `root`."""
    found = sorted(root.glob("*/model.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise PipelineError(
            f"no trained classifier under {root.resolve()}; run `make features train` first "
            "(from the project root), or pass --model DIR"
        )
    return found[-1].parent
