"""The learner of active learning: train's logistic regression, refit on a few hundred labels.

With few labels C cannot be cross-validated, so it is fixed (`FIXED_C`, scikit-learn's default,
as `make curve` does) until every class has 2 x ``train.cv`` labels; from then on it is chosen by
``train.cv``-fold CV over ``train.cs``, as `make train` chooses it. Probabilities always have a
column per class, also while a class has no label yet. `cv_accuracy` scores the labels so far by
cross-validated predictions, with a Wilson interval: the progress a labeler sees. `next_batch`
puts the two together: fit on the labels so far, then ask a strategy (`pipeline.query`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from pipeline.config import Config
from pipeline.query import Picks, choose, in_cold_start
from pipeline.train import logistic_regression_cv

FIXED_C = 1.0  # too few labels to cross-validate: scikit-learn's default, as make curve uses
# The classifier that picks: firmer than CV's choice on actively picked labels, which favours a
# weak penalty (C=10 on SST-2) that sharpens the probabilities the strategies read (docs).
PICK_C = 0.3
Z95 = 1.959964


@dataclass
class Fit:
    """A fitted probe: its model, the C it used, and the classes it saw (ids 0..K-1)."""

    model: object
    C: float
    classes: np.ndarray
    n_classes: int

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities with a column per class, 0 for a class without labels yet.

        Computed here in float32 (a pool of 67,349 in about 10 ms): scikit-learn would first
        copy the pool to float64.
        """
        *scalers, model = [step for _, step in self.model.steps]
        x = np.asarray(x, dtype=np.float32)
        for scaler in scalers:
            x = ((x - scaler.mean_) / scaler.scale_).astype(np.float32)
        z = (x @ model.coef_.T.astype(np.float32)).astype(np.float64) + model.intercept_
        if z.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
            seen = np.column_stack([1.0 - p1, p1])
        else:
            seen = np.exp(z - z.max(axis=1, keepdims=True))
            seen /= seen.sum(axis=1, keepdims=True)
        proba = np.zeros((len(x), self.n_classes))
        proba[:, self.classes] = seen
        return proba


def can_fit(y: np.ndarray) -> bool:
    """Whether the labels hold at least two classes, which a logistic regression needs."""
    return len(np.unique(y)) >= 2


def can_cross_validate(y: np.ndarray, config: Config) -> bool:
    """Whether every class present has at least 2 x train.cv labels (as `make curve` asks)."""
    counts = np.bincount(y)
    return bool(counts[counts > 0].min() >= 2 * config.train.cv) and can_fit(y)


def fit(
    x: np.ndarray, y: np.ndarray, config: Config, n_classes: int, c: float | None = None
) -> Fit:
    """Fit on (x, y): C as given, else by CV when there are enough labels, else `FIXED_C`."""
    search = logistic_regression_cv(config).set_params(n_jobs=1)
    if c is None and can_cross_validate(y, config):
        model = search.fit(x, y)
        c = float(model.best_params_["logisticregression__C"])
        model = model.best_estimator_
    else:
        c = FIXED_C if c is None else c
        model = clone(search.estimator).set_params(logisticregression__C=c).fit(x, y)
    return Fit(model, c, np.unique(y), n_classes)


def choose_c(x: np.ndarray, y: np.ndarray, config: Config) -> float:
    """C by CV over train.cs when there are enough labels, else `FIXED_C`."""
    if not can_cross_validate(y, config):
        return FIXED_C
    search = logistic_regression_cv(config).set_params(n_jobs=1).fit(x, y)
    return float(search.best_params_["logisticregression__C"])


def wilson(hits: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson interval of a proportion `hits` / `n` ((0, 1) when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return float(min(p, max(0.0, centre - half))), float(max(p, min(1.0, centre + half)))


def cv_accuracy(x: np.ndarray, y: np.ndarray, config: Config, c: float) -> dict | None:
    """Accuracy of cross-validated predictions of the labels (C fixed at `c`), its 95 % Wilson
    interval and the folds, or None when some class has fewer labels than 2 folds need."""
    if len(y) < 4:
        return None
    counts = np.bincount(y)
    folds = min(config.train.cv, int(counts[counts > 0].min()))
    if folds < 2 or not can_fit(y):
        return None
    estimator = clone(logistic_regression_cv(config).estimator).set_params(logisticregression__C=c)
    split = StratifiedKFold(folds, shuffle=True, random_state=config.data.seed)
    predicted = cross_val_predict(estimator, x, y, cv=split)
    hits = int((predicted == y).sum())
    low, high = wilson(hits, len(y))
    return {"n": len(y), "accuracy": hits / len(y), "low": low, "high": high, "folds": folds}


def next_batch(
    strategy: str,
    x: np.ndarray,
    taken: np.ndarray,
    labeled: tuple[np.ndarray, np.ndarray],
    n: int,
    n_classes: int,
    config: Config,
    seed: int = 0,
) -> tuple[Picks, Fit | None]:
    """The next `n` rows of pool `x` under `strategy` and the classifier that judged them.

    `labeled` is (vectors, class ids) of every labeled text, in the pool or not; `taken` marks
    the pool rows labeled or picked. While labels are few (`in_cold_start`) every strategy but
    random takes the diversity start. The picking classifier's C is `PICK_C`.
    """
    x_labeled, y = labeled
    model = fit(x_labeled, y, config, n_classes, c=PICK_C) if can_fit(y) else None
    if strategy != "random" and (model is None or in_cold_start(y, n_classes)):
        strategy = "kmeans"
    proba = None if model is None or strategy in ("random", "kmeans") else model.predict_proba(x)
    return choose(strategy, x, n, taken, proba, seed), model
