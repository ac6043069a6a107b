"""SentEval's classifier protocols on fixed sentence vectors, as its own code runs them.

facebookresearch/SentEval, ``senteval/tools/validation.py`` with ``usepytorch=False``: a
``LogisticRegression(C=c, random_state=seed)`` with scikit-learn's defaults (lbfgs,
``max_iter=100``), C from a grid of powers of two, accuracies in percent rounded to two decimals
before the best C is picked (the first on ties), folds from ``StratifiedKFold(shuffle=True,
random_state=1111)``. The tasks sort their sentences by (number of words, label) before encoding,
and the folds follow that order, so `senteval_order` gives it.

- `inner_kfold` (MR, CR, SUBJ, MPQA: no test set): k outer folds; in each, C by inner k-fold CV on
  the outer training part; the result is the mean test accuracy over the outer folds.
- `kfold` (TREC): C by k-fold CV on train, then one fit on all of train, scored on test.
- `split` (SST-2, SST-5): C by accuracy on dev, then scored on test.

The fits are independent, so they run in parallel (joblib, all cores); the numbers do not depend
on that.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

SEED = 1111  # SentEval's default seed, also its fixed fold seed
INNER_KFOLD_CS = [2.0**t for t in range(-2, 4)]
KFOLD_CS = [2.0**t for t in range(-1, 6)]
SPLIT_CS = [2.0**t for t in range(-2, 4)]


@dataclass
class Result:
    """Accuracies in percent as SentEval reports them: dev (the C search) and test."""

    dev: float
    test: float | None
    test_std: float | None = None  # over the outer folds of `inner_kfold`
    cs: list[float] = field(default_factory=list)  # the chosen C (per outer fold for inner_kfold)


def senteval_order(texts: list[str], labels: np.ndarray) -> np.ndarray:
    """The permutation that sorts sentences by (number of words, label), stably, as SentEval."""
    return np.array(
        sorted(range(len(texts)), key=lambda i: (len(texts[i].split()), int(labels[i]))),
        dtype=np.int64,
    )


def inner_kfold(x: np.ndarray, y: np.ndarray, k: int = 10, seed: int = SEED) -> Result:
    """Nested k-fold CV: mean outer-fold test accuracy, C chosen inside each outer fold."""
    # SentEval's InnerKFoldClassifier fixes its folds at 1111 whatever the seed (kfold uses it)
    folds = StratifiedKFold(k, shuffle=True, random_state=SEED)
    outer = list(folds.split(x, y))
    inner = [
        [(train[a], train[b]) for a, b in folds.split(x[train], y[train])] for train, _ in outer
    ]
    accuracy = _fit_and_score(
        x,
        y,
        [(c, fit, held) for splits in inner for c in INNER_KFOLD_CS for fit, held in splits],
        seed,
    )
    per_c = np.asarray(accuracy).reshape(len(outer), len(INNER_KFOLD_CS), k).mean(axis=2)
    dev_scores = np.round(100 * per_c, 2)
    best = [INNER_KFOLD_CS[int(np.argmax(row))] for row in dev_scores]
    refits = [(c, fit, held) for c, (fit, held) in zip(best, outer, strict=True)]
    tests = _fit_and_score(x, y, refits, seed)
    tests = [round(100 * t, 2) for t in tests]
    return Result(
        dev=round(float(np.mean(dev_scores.max(axis=1))), 2),
        test=round(float(np.mean(tests)), 2),
        test_std=round(float(np.std(tests)), 2),
        cs=best,
    )


def kfold(
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    k: int = 10,
    seed: int = SEED,
) -> Result:
    """C by k-fold CV on train; then fit on all of train and score the test set (if any)."""
    splits = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y))
    accuracy = _fit_and_score(
        x, y, [(c, fit, held) for c in KFOLD_CS for fit, held in splits], seed
    )
    scores = np.round(100 * np.asarray(accuracy).reshape(len(KFOLD_CS), k).mean(axis=1), 2)
    best = KFOLD_CS[int(np.argmax(scores))]
    test = None if x_test is None else _score_once(best, x, y, x_test, y_test, seed)
    return Result(dev=float(scores.max()), test=test, cs=[best])


def split(
    x: np.ndarray,
    y: np.ndarray,
    x_dev: np.ndarray,
    y_dev: np.ndarray,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    seed: int = SEED,
) -> Result:
    """C by accuracy on dev; then the classifier with that C scored on test (if any)."""
    models = Parallel(n_jobs=-1)(delayed(_fit)(c, x, y, seed) for c in SPLIT_CS)
    scores = [round(100 * model.score(x_dev, y_dev), 2) for model in models]
    best = int(np.argmax(scores))
    test = None if x_test is None else round(100 * models[best].score(x_test, y_test), 2)
    return Result(dev=max(scores), test=test, cs=[SPLIT_CS[best]])


def _fit(c: float, x: np.ndarray, y: np.ndarray, seed: int) -> LogisticRegression:
    with warnings.catch_warnings():  # 100 iterations do not always converge; SentEval's choice
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(C=c, random_state=seed).fit(x, y)


def _score_once(
    c: float, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, seed: int
) -> float:
    return round(100 * _fit(c, x, y, seed).score(x_test, y_test), 2)


def _fit_and_score(
    x: np.ndarray,
    y: np.ndarray,
    jobs: Iterable[tuple[float, np.ndarray, np.ndarray]],
    seed: int,
) -> list[float]:
    """Accuracy on rows `held` of a fit with C on rows `fit`, for every (C, fit, held), in order.

    Worker processes (joblib memory-maps `x` for them) with one BLAS thread each: on a busy
    machine, a BLAS thread per core makes each small fit about ten times slower.
    """
    return Parallel(n_jobs=-1)(delayed(_fit_score)(x, y, *job, seed) for job in jobs)


def _fit_score(
    x: np.ndarray, y: np.ndarray, c: float, fit: np.ndarray, held: np.ndarray, seed: int
) -> float:
    return _fit(c, x[fit], y[fit], seed).score(x[held], y[held])
