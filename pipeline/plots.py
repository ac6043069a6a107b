"""Figures for an evaluation: confusion matrix, ROC curve, reliability, accuracy by length.

Each function writes one PNG (matplotlib, no screen needed) and returns nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.io import atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGURES = {
    name: f"{name}.png"
    for name in ("confusion_matrix", "roc_curve", "reliability", "accuracy_by_length")
}
SIZE = (5.0, 4.0)  # inches; at 120 dpi a 600 x 480 image
DPI = 120


def evaluation_figures(
    out: Path, metrics: dict[str, Any], y_true: np.ndarray, proba: np.ndarray
) -> None:
    """The four PNGs of an evaluation, next to metrics.json."""
    out.mkdir(parents=True, exist_ok=True)
    title, names = metrics["run"], metrics["labels"]
    drawings = {
        "confusion_matrix": lambda path: confusion(
            metrics["classifier"]["confusion_matrix"], names, path, title
        ),
        "roc_curve": lambda path: roc(y_true, proba, names, path, title),
        "reliability": lambda path: reliability(y_true, proba, path, title),
        "accuracy_by_length": lambda path: by_length(metrics["by_length"], path, title),
    }
    for name, draw in drawings.items():
        with atomic_path(out / FIGURES[name]) as tmp:
            draw(tmp)


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Axes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI, layout="constrained")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return fig, ax


def _save(fig: Figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, format="png")
    plt.close(fig)


def confusion(matrix: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    """Counts per (true, predicted) cell, with the count and row share written in each cell."""
    fig, ax = _figure(f"Confusion matrix: {title}", "predicted", "true")
    counts = np.array(matrix)
    ax.imshow(counts, cmap="Blues")
    shares = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
    for (i, j), count in np.ndenumerate(counts):
        color = "white" if count > counts.max() / 2 else "black"
        ax.text(j, i, f"{count}\n{shares[i, j]:.0%}", ha="center", va="center", color=color)
    rotate = 45 if len(labels) > 3 else 0
    ax.set_xticks(range(len(labels)), labels, rotation=rotate, ha="right" if rotate else "center")
    ax.set_yticks(range(len(labels)), labels)
    _save(fig, path)


def roc(y_true: np.ndarray, proba: np.ndarray, names: list[str], path: Path, title: str) -> None:
    """ROC curve with its area (one curve per class against the rest for K > 2), and chance."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = _figure(f"ROC curve: {title}", "false positive rate", "true positive rate")
    curves = {"classifier": 1} if len(names) == 2 else {name: k for k, name in enumerate(names)}
    for label, k in curves.items():
        is_k = y_true == k
        if is_k.all() or not is_k.any():
            continue  # a class absent from (or alone in) the data has no curve
        fpr, tpr, _ = roc_curve(is_k, proba[:, k])
        ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(is_k, proba[:, k]):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.legend(loc="lower right", fontsize="small")
    _save(fig, path)


def reliability(y_true: np.ndarray, proba: np.ndarray, path: Path, title: str) -> None:
    """Calibration in 10 equal-width bins: for two classes the observed share of positives
    against p(positive); for K classes the accuracy against the top label's probability."""
    from sklearn.calibration import calibration_curve

    if proba.shape[1] == 2:
        hits, confidence = y_true == 1, proba[:, 1]
        xlabel, ylabel = "predicted probability of positive", "observed share of positives"
    else:
        hits, confidence = proba.argmax(axis=1) == y_true, proba.max(axis=1)
        xlabel, ylabel = "probability of the top label", "observed accuracy"
    fig, ax = _figure(f"Reliability: {title}", xlabel, ylabel)
    observed, predicted = calibration_curve(hits, confidence, n_bins=10)
    ax.plot(predicted, observed, marker="o", label="classifier")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.legend(loc="upper left")
    _save(fig, path)


def by_length(rows: list[dict], path: Path, title: str) -> None:
    """Accuracy per sentence-length bucket, with each bucket's size on its bar."""
    fig, ax = _figure(f"Accuracy by length: {title}", "sentence length (words)", "accuracy")
    bars = ax.bar([r["words"] for r in rows], [r["accuracy"] for r in rows])
    ax.bar_label(bars, labels=[f"n={r['n']}" for r in rows], padding=2)
    ax.set_ylim(0, 1.1)
    _save(fig, path)


def by_layer(rows: list[dict], path: Path, title: str) -> None:
    """Dev accuracy of cls and mean pooling for every hidden layer (0 = embeddings)."""
    fig, ax = _figure(f"Dev accuracy by layer: {title}", "layer (0 = embeddings)", "dev accuracy")
    for pooling, marker in (("cls", "o"), ("mean", "s")):
        points = sorted((r["layer"], r["accuracy"]) for r in rows if r["pooling"] == pooling)
        ax.plot(*zip(*points, strict=True), marker=marker, label=pooling)
    ax.legend(loc="lower right")
    _save(fig, path)


def curve(curves: list[dict], path: Path, title: str) -> None:
    """Mean eval accuracy against labeled sentences per class (log axis), a line per config, its
    95 % interval as a band; ``all`` sits at train's mean class size."""
    fig, ax = _figure(f"Learning curve: {title}", "labeled sentences per class", "eval accuracy")
    ax.title.set_size("small")  # run names of overlaid configs are long
    for one in curves:
        rows, k = one["sizes"], len(one["labels"])
        x = [r["n_per_class"] if r["n_per_class"] != "all" else r["n_train"] / k for r in rows]
        order = np.argsort(x)
        x, rows = np.asarray(x)[order], [rows[i] for i in order]
        ax.plot(x, [r["mean"] for r in rows], marker="o", label=one["run"])
        low, high = zip(*(r["ci95"] for r in rows), strict=True)
        ax.fill_between(x, low, high, alpha=0.2)
    ax.set_xscale("log")
    ax.legend(loc="lower right", fontsize="small")
    _save(fig, path)
