"""MTEB's classification protocol on fixed sentence vectors, as its own code runs it.

The ``mteb`` protocol of `pipeline.protocols` (``make evaluate``, ``make suite``) runs it.

embeddings-benchmark/mteb 2.26.24, ``mteb/abstasks/classification.py`` (`AbsTaskClassification`)
and ``mteb/_evaluators/sklearn_evaluator.py``:

- `draws`: ``n_experiments`` (10) undersamplings of train. Each one shuffles, in place, the index
  list the previous one left, with a fresh ``np.random.RandomState(seed)`` (the task's seed, 42),
  then walks it and keeps the first ``samples_per_label`` (8) rows of every label, in that order.
- each draw fits ``LogisticRegression(max_iter=100, random_state=seed)``, otherwise scikit-learn's
  defaults (lbfgs, C=1, no scaling), and predicts the evaluation split.
- `metrics`: per experiment accuracy, F1, precision and recall (macro and weighted), and with two
  classes the average precision of the predicted labels (``ap``, ``ap_weighted``); the task's
  scores are the means over the experiments, reported with each experiment's scores.
- `cross_validation`: tasks without an evaluation split (``is_cross_validation``) use
  ``KFold(5, shuffle=True, random_state=seed)``, one undersampled fit per fold, the index list
  carried from fold to fold as above.
"""

from __future__ import annotations

import warnings
from collections import defaultdict

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
)
from sklearn.model_selection import KFold

SEED = 42  # AbsTask's default seed
SAMPLES_PER_LABEL = 8
EXPERIMENTS = 10
MAX_ITER = 100
FOLDS = 5  # n_splits of the cross-validation tasks


def undersample(
    y: np.ndarray, samples_per_label: int, seed: int, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One of MTEB's draws: (the kept rows, in draw order; the shuffled order to pass on)."""
    order = np.arange(len(y)) if order is None else order.copy()
    np.random.RandomState(seed).shuffle(order)
    taken: dict[int, int] = defaultdict(int)
    kept = []
    for i in order:
        if taken[y[i]] < samples_per_label:
            kept.append(i)
            taken[y[i]] += 1
    return np.asarray(kept, dtype=np.int64), order


def draws(
    y: np.ndarray, samples_per_label: int, experiments: int, seed: int = SEED
) -> list[np.ndarray]:
    """The rows of train that each of the `experiments` fits sees."""
    rows, order = [], None
    for _ in range(experiments):
        kept, order = undersample(y, samples_per_label, seed, order)
        rows.append(kept)
    return rows


def fit(x: np.ndarray, y: np.ndarray, seed: int = SEED) -> LogisticRegression:
    """MTEB's evaluator model, fitted."""
    with warnings.catch_warnings():  # 100 iterations do not always converge; MTEB's choice
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(max_iter=MAX_ITER, random_state=seed).fit(x, y)


def metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """One experiment's scores under MTEB's names (`f1` is macro-F1)."""
    kw = {"zero_division": 0.0}  # scikit-learn's value for an unpredicted class, without a warning
    scores = {
        "accuracy": accuracy_score(y_true, y_pred),
        "f1": f1_score(y_true, y_pred, average="macro", **kw),
        "f1_weighted": f1_score(y_true, y_pred, average="weighted", **kw),
        "precision": precision_score(y_true, y_pred, average="macro", **kw),
        "precision_weighted": precision_score(y_true, y_pred, average="weighted", **kw),
        "recall": recall_score(y_true, y_pred, average="macro", **kw),
        "recall_weighted": recall_score(y_true, y_pred, average="weighted", **kw),
        "ap": None,
        "ap_weighted": None,
    }
    if len(np.unique(y_true)) == 2:
        scores["ap"] = average_precision_score(y_true, y_pred, average="macro")
        scores["ap_weighted"] = average_precision_score(y_true, y_pred, average="weighted")
    return {k: None if v is None else float(v) for k, v in scores.items()}


def average(experiments: list[dict[str, float | None]]) -> dict:
    """The means over experiments (None where a score is None throughout), and the experiments."""
    means = {}
    for key in experiments[0]:
        values = [e[key] for e in experiments if e[key] is not None]
        means[key] = float(np.mean(values)) if values else None
    return {**means, "scores_per_experiment": experiments}


def evaluate(
    x: np.ndarray,
    y: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    samples_per_label: int = SAMPLES_PER_LABEL,
    experiments: int = EXPERIMENTS,
    seed: int = SEED,
) -> tuple[dict, np.ndarray]:
    """Train -> eval: MTEB's averaged scores, and every experiment's probabilities (E x n x K)."""
    scores, probas, k = [], [], int(max(y.max(), y_eval.max())) + 1
    for rows in draws(y, samples_per_label, experiments, seed):
        model = fit(x[rows], y[rows], seed)
        scores.append(metrics(y_eval, model.predict(x_eval)))
        probas.append(_full_proba(model, x_eval, k))
    return average(scores), np.stack(probas)


def cross_validation(
    x: np.ndarray, y: np.ndarray, samples_per_label: int = SAMPLES_PER_LABEL, seed: int = SEED
) -> tuple[dict, np.ndarray, np.ndarray]:
    """No evaluation split: one undersampled fit per fold of MTEB's 5-fold split of train.

    Returns MTEB's averaged scores, the rows of train fold after fold, and their probabilities.
    """
    scores, rows, probas, order, k = [], [], [], None, int(y.max()) + 1
    for fit_rows, held in KFold(FOLDS, shuffle=True, random_state=seed).split(x):
        kept, order = undersample(y[fit_rows], samples_per_label, seed, order)
        model = fit(x[fit_rows][kept], y[fit_rows][kept], seed)
        scores.append(metrics(y[held], model.predict(x[held])))
        rows.append(held)
        probas.append(_full_proba(model, x[held], k))
    return average(scores), np.concatenate(rows), np.concatenate(probas)


def _full_proba(model: LogisticRegression, x: np.ndarray, k: int) -> np.ndarray:
    """Probabilities over all `k` classes (a class the draw lacked gets 0)."""
    proba = np.zeros((len(x), k))
    proba[:, model.classes_] = model.predict_proba(x)
    return proba
