"""Query strategies: which unlabeled texts of a pool to label next, on the pool's vectors.

Every strategy takes the pool's vectors `x` (n x d), a mask `taken` of the rows that are labeled
or already picked (never picked again), and the classifier's probabilities where it needs them,
and returns `Picks`: the rows to label, most wanted first, with the strategy's score of each
(higher: wanted more).

- ``random``: uniform picks, the baseline.
- ``least-confidence``, ``margin``, ``entropy``: the most uncertain texts (1 - top probability;
  1 - (top - second); the entropy in nats). These equal small-text's ``LeastConfidence``,
  ``BreakingTies`` and ``PredictionEntropy`` picks (tests/test_query.py).
- ``kmeans``: the diversity start. k-means (cosine) into n groups of the free texts, each
  weighted by its squared cosine distance to the nearest taken text (so covered regions draw no
  centre), and the free text nearest each centre, the heaviest group first. Its score is the
  share of the pool's weight its group stands for. Used while labels are few (`in_cold_start`).
  On a big pool it groups a random sample of KMEANS_SAMPLE free texts: enough to place a few
  dozen centres, in a tenth of the time on 67,349 texts.
- ``badge``: BADGE (Ash et al. 2020): k-means++ seeding on the gradient embeddings of the loss at
  the predicted label, (p - e_yhat) x [x, 1] for a logistic regression; its score is the
  gradient's norm. Distances come from the factors, so no n x K d array is built.
- ``cluster-margin``: margin within clusters (after Zhdanov 2019): the 10 n least certain texts by
  margin, grouped by k-means (cosine, weighted by uncertainty) into n groups, and from each the
  text nearest its centre; its score is the margin score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline import PipelineError

UNCERTAINTY = ("least-confidence", "margin", "entropy")
NEEDS_PROBA = (*UNCERTAINTY, "badge", "cluster-margin")
STRATEGIES = ("random", *UNCERTAINTY, "kmeans", "badge", "cluster-margin")
DEFAULT = "badge"  # the study's pick (docs/active-learning.md)
FEW_PER_CLASS = 5  # the diversity start runs until every class has this many labels
PREFILTER = 10  # cluster-margin clusters PREFILTER x n of the least certain texts
KMEANS_SAMPLE = 8192  # kmeans groups at most this many free texts, drawn at random


@dataclass
class Picks:
    """Rows of the pool to label, most wanted first, and the strategy's score of each."""

    rows: np.ndarray
    scores: np.ndarray
    strategy: str


def check_strategy(name: str) -> str:
    """`name` when it is a strategy, else an error that lists them."""
    if name not in STRATEGIES:
        raise PipelineError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return name


def in_cold_start(y: np.ndarray, n_classes: int) -> bool:
    """Whether labels are still too few for the classifier to judge: some class has fewer than
    FEW_PER_CLASS, unless 4 x that many per class are in and at least two classes are seen."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)
    if counts.min() >= FEW_PER_CLASS:
        return False
    return not (len(y) >= 4 * FEW_PER_CLASS * n_classes and (counts > 0).sum() >= 2)


def informativeness(proba: np.ndarray, kind: str) -> np.ndarray:
    """How uncertain the classifier is about each row (higher: more uncertain)."""
    if kind == "least-confidence":
        return 1.0 - proba.max(axis=1)
    if kind == "margin":
        top2 = np.partition(proba, -2, axis=1)[:, -2:]
        return 1.0 - (top2[:, 1] - top2[:, 0])
    if kind == "entropy":
        p = np.clip(proba, 1e-300, 1.0)
        return -(proba * np.log(p)).sum(axis=1)
    raise PipelineError(f"{kind!r} is not an uncertainty strategy ({', '.join(UNCERTAINTY)})")


def top(scores: np.ndarray, candidates: np.ndarray, n: int) -> np.ndarray:
    """The `n` candidates of highest score, highest first (ties: the lower row first)."""
    n = min(n, len(candidates))
    if n == 0:
        return candidates[:0]
    values = scores[candidates]
    if n < len(candidates):
        keep = np.argpartition(-values, n - 1)[:n]
        candidates, values = candidates[keep], values[keep]
    order = np.lexsort((candidates, -values))
    return candidates[order]


def choose(
    strategy: str,
    x: np.ndarray,
    n: int,
    taken: np.ndarray,
    proba: np.ndarray | None = None,
    seed: int = 0,
) -> Picks:
    """The `n` rows of `x` to label next under `strategy`; none of them `taken`."""
    candidates = np.flatnonzero(~taken)
    n = min(n, len(candidates))
    if strategy in NEEDS_PROBA and proba is None:
        raise PipelineError(f"strategy {strategy!r} needs a classifier (labels of two classes)")
    if n == 0:
        return Picks(candidates, np.zeros(0), strategy)
    if strategy == "random":
        rows = np.random.default_rng(seed).choice(candidates, n, replace=False)
        return Picks(rows, np.zeros(n), strategy)
    if strategy in UNCERTAINTY:
        scores = informativeness(proba, strategy)
        rows = top(scores, candidates, n)
        return Picks(rows, scores[rows], strategy)
    if strategy == "kmeans":
        return _kmeans(x, n, taken, seed)
    if strategy == "badge":
        return _badge(x, proba, n, candidates, seed)
    if strategy == "cluster-margin":
        return _cluster_margin(x, proba, n, candidates, seed)
    raise PipelineError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def priority(
    strategy: str, proba: np.ndarray, x: np.ndarray, squares: np.ndarray | None = None
) -> np.ndarray:
    """A score per row for picking one text at a time (the labeling page): what `choose` takes
    first with n = 1. Uncertainty strategies and cluster-margin: the uncertainty (margin for
    the latter); badge: the gradient norm (`squares`: |x_i|^2 + 1, if the caller keeps them)."""
    if strategy in UNCERTAINTY:
        return informativeness(proba, strategy)
    if strategy == "cluster-margin":
        return informativeness(proba, "margin")
    if strategy == "badge":
        return np.sqrt(_gradient_factors(proba, x, squares)[1])
    raise PipelineError(f"strategy {strategy!r} does not score single texts")


def _gradient_factors(
    proba: np.ndarray, x: np.ndarray, squares: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """BADGE's a_i = p_i - e_(argmax p_i) and |g_i|^2 = |a_i|^2 (|x_i|^2 + 1)."""
    a = proba.copy()
    a[np.arange(len(a)), a.argmax(axis=1)] -= 1.0
    if squares is None:
        x = np.asarray(x, dtype=np.float32)
        squares = np.einsum("ij,ij->i", x, x) + 1.0
    return a, (a * a).sum(axis=1) * squares


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float32), so k-means groups by cosine."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _kmeans(x: np.ndarray, n: int, taken: np.ndarray, seed: int) -> Picks:
    from sklearn.cluster import KMeans

    units = unit_rows(x)
    free = np.flatnonzero(~taken)
    if len(free) > KMEANS_SAMPLE:
        free = np.sort(np.random.default_rng(seed).choice(free, KMEANS_SAMPLE, replace=False))
    weight = np.ones(len(free))
    if taken.any():  # how far each free text is from every taken one: covered ones weigh less
        weight = np.maximum(1.0 - nearest_similarity(units[free], units[taken]), 0.0) ** 2 + 1e-6
    model = KMeans(n, n_init=1, max_iter=20, random_state=seed)
    groups = model.fit_predict(units[free], sample_weight=weight)
    distance = ((units[free] - model.cluster_centers_[groups]) ** 2).sum(axis=1)
    mass = np.bincount(groups, weights=weight, minlength=n) / weight.sum()
    rows, scores = [], []
    for group in np.argsort(-mass, kind="stable"):  # the heaviest group first
        members = np.flatnonzero(groups == group)
        if len(members):
            rows.append(free[members[np.argmin(distance[members])]])
            scores.append(mass[group])
    if len(rows) < n:  # an empty group: the nearest of the rest
        rest = np.setdiff1d(np.arange(len(free)), np.searchsorted(free, rows))
        extra = rest[np.argsort(distance[rest], kind="stable")][: n - len(rows)]
        rows += free[extra].tolist()
        scores += [0.0] * len(extra)
    return Picks(np.asarray(rows, dtype=np.int64), np.asarray(scores), "kmeans")


def nearest_similarity(a: np.ndarray, b: np.ndarray, block: int = 4096) -> np.ndarray:
    """For each unit row of `a`, its largest cosine similarity to a row of `b`."""
    out = np.empty(len(a), dtype=np.float32)
    for start in range(0, len(a), block):
        out[start : start + block] = (a[start : start + block] @ b.T).max(axis=1)
    return out


def _badge(x: np.ndarray, proba: np.ndarray, n: int, candidates: np.ndarray, seed: int) -> Picks:
    """k-means++ seeding on g_i = a_i (x) [x_i, 1], a_i = p_i - e_(argmax p_i), by its factors:
    |g_i - g_j|^2 = |a_i|^2 |x_i|^2 + |a_j|^2 |x_j|^2 - 2 (a_i . a_j)(x_i . x_j)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float32)
    a, squared = _gradient_factors(proba[candidates], x[candidates])
    chosen = [int(np.argmax(squared))]
    nearest = np.full(len(candidates), np.inf)
    for _ in range(n - 1):
        c = chosen[-1]
        dots = (x @ x[candidates[c]])[candidates] + 1.0  # [x_i, 1] . [x_c, 1]
        d = squared + squared[c] - 2.0 * (a @ a[c]) * dots
        nearest = np.minimum(nearest, np.maximum(d, 0.0))
        nearest[chosen] = 0.0
        total = nearest.sum()
        if total <= 0:  # every candidate sits on a centre: take the largest gradients left
            free = np.setdiff1d(np.arange(len(candidates)), chosen)
            chosen.append(int(free[np.argmax(squared[free])]))
        else:
            chosen.append(int(rng.choice(len(candidates), p=nearest / total)))
    chosen = np.asarray(chosen)
    return Picks(candidates[chosen], np.sqrt(squared[chosen]), "badge")


def _cluster_margin(
    x: np.ndarray, proba: np.ndarray, n: int, candidates: np.ndarray, seed: int
) -> Picks:
    from sklearn.cluster import KMeans

    scores = informativeness(proba, "margin")
    shortlist = top(scores, candidates, PREFILTER * n)
    if len(shortlist) <= n:
        return Picks(shortlist, scores[shortlist], "cluster-margin")
    units = unit_rows(x[shortlist])
    model = KMeans(n, n_init=1, max_iter=50, random_state=seed)
    groups = model.fit_predict(units, sample_weight=scores[shortlist] + 1e-6)
    distance = ((units - model.cluster_centers_[groups]) ** 2).sum(axis=1)
    rows = []
    for group in range(n):
        members = np.flatnonzero(groups == group)
        if len(members):
            rows.append(shortlist[members[np.argmin(distance[members])]])
    rows = np.asarray(rows)
    if len(rows) < n:  # an empty group: the least certain of the shortlist left
        rest = shortlist[~np.isin(shortlist, rows)]
        rows = np.concatenate([rows, rest[: n - len(rows)]]).astype(np.int64)
    rows = rows[np.lexsort((rows, -scores[rows]))]
    return Picks(rows, scores[rows], "cluster-margin")
