"""Figures for an evaluation: confusion matrix, ROC curve, reliability, accuracy by length, and
the most confidently wrong sentences with their words coloured by weight.

Each function writes one PNG (matplotlib, no screen needed) and returns nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.io import atomic_path
from pipeline.tint import top_words

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGURES = {
    name: f"{name}.png"
    for name in ("confusion_matrix", "roc_curve", "reliability", "accuracy_by_length")
}
EXPLAINED_FIGURE = "wrong_explained.png"
SIZE = (5.0, 4.0)  # inches; at 120 dpi a 600 x 480 image
DPI = 120
WRAP = 90  # characters per line of an explained sentence
MAX_LINES = 2  # lines per explained sentence; the rest is cut with an ellipsis
STRONG = 3  # each explained sentence's strongest words: bold, their weights above the words
FONT = 11.0  # points, of the words (monospace: a character is MONO_EM * FONT wide)
MONO_EM = 0.602  # DejaVu Sans Mono's advance width, in ems (matplotlib's monospace font)
UNIT = 1.7 * FONT / 72  # inches: the height of a word's box
HEADER, LINE, GAP = 1.0, 1.3, 0.5  # in UNITs: a sentence's labels, each line of words, spacing
# word weights, against the predicted label to toward it: orange, white, blue (as pipeline.tint:
# a pair colour-blind readers tell apart, that does not read as bad/good sentiment)
WEIGHT_COLOURS = ("#e66101", "#f7f7f7", "#0571b0")
Placed = tuple[int, str, float | None]  # a word's column, text and weight (None: the ellipsis)


def figures(explained: dict[str, Any]) -> dict[str, str]:
    """The figure files of an evaluation: FIGURES, and the explained sentences' if there are any."""
    return FIGURES | ({"wrong_explained": EXPLAINED_FIGURE} if explained["sentences"] else {})


def evaluation_figures(
    out: Path, metrics: dict[str, Any], y_true: np.ndarray, proba: np.ndarray
) -> None:
    """The PNGs of an evaluation (`metrics["figures"]`), next to metrics.json; an explained
    figure left by an earlier evaluation goes when this one has none."""
    out.mkdir(parents=True, exist_ok=True)
    title, names = metrics["run"], metrics["labels"]
    drawings = {
        "confusion_matrix": lambda path: confusion(
            metrics["classifier"]["confusion_matrix"], names, path, title
        ),
        "roc_curve": lambda path: roc(y_true, proba, names, path, title),
        "reliability": lambda path: reliability(y_true, proba, path, title),
        "accuracy_by_length": lambda path: by_length(metrics["by_length"], path, title),
        "wrong_explained": lambda path: wrong_explained(metrics["wrong_explained"], path, title),
    }
    for name, file in metrics["figures"].items():
        with atomic_path(out / file) as tmp:
            drawings[name](tmp)
    if "wrong_explained" not in metrics["figures"]:
        (out / EXPLAINED_FIGURE).unlink(missing_ok=True)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Axes]:
    fig, ax = _pyplot().subplots(figsize=SIZE, dpi=DPI, layout="constrained")
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


def word_lines(words: list[dict]) -> list[list[Placed]]:
    """`words` laid out in lines of at most WRAP characters, a space where their spans leave a
    gap; past MAX_LINES lines the rest is cut with an ellipsis."""
    lines: list[list[Placed]] = [[]]
    column, end = 0, None
    for word in words:
        at = column + int(end is not None and word["start"] > end)
        if at + len(word["word"]) > WRAP and lines[-1]:
            if len(lines) == MAX_LINES:
                lines[-1].append((column + 1, "…", None))
                break
            lines.append([])
            at = 0
        lines[-1].append((at, word["word"], word["weight"]))
        column, end = at + len(word["word"]), word["end"]
    return lines


def wrong_explained(explained: dict[str, Any], path: Path, title: str) -> None:
    """A block per sentence: its true and predicted label (with its probability) and its STRONG
    strongest words with their weights, then its words on a colour by weight, diverging at 0
    (blue: toward the predicted label, orange: against it), the strongest also bold."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LinearSegmentedColormap, Normalize
    from matplotlib.patches import Rectangle

    sentences = explained["sentences"]
    laid = [word_lines(s["words"]) for s in sentences]
    height = sum(HEADER + LINE * len(lines) + GAP for lines in laid)
    width = (WRAP + 2) * MONO_EM * FONT / 72  # inches
    fig_w, fig_h, bottom = width + 0.4, height * UNIT + 1.5, 1.0
    plt = _pyplot()
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=DPI)
    fig.suptitle(f"Most confidently wrong, explained ({explained['method']}): {title}")
    ax = fig.add_axes((0.2 / fig_w, bottom / fig_h, width / fig_w, height * UNIT / fig_h))
    ax.set(xlim=(0, WRAP + 2), ylim=(height, 0))
    ax.axis("off")
    limit = max(abs(w["weight"]) for s in sentences for w in s["words"]) or 1.0
    norm, cmap = (
        Normalize(-limit, limit),
        LinearSegmentedColormap.from_list("weight", WEIGHT_COLOURS),
    )
    mono = {"family": "monospace", "size": FONT, "va": "center", "parse_math": False}
    y = 0.0
    for sentence, lines in zip(sentences, laid, strict=True):
        top = top_words(sentence["words"], STRONG)
        header = (
            f"true {sentence['label']}, predicted {sentence['predicted']} "
            f"(p = {sentence['probability']:.2f}); strongest: "
            + ", ".join(f"“{w['word']}” {w['weight']:+.2f}" for w in top)
        )
        ax.text(0, y + HEADER / 2, header, va="center", parse_math=False)
        y += HEADER
        for line in lines:
            for column, text, weight in line:
                if weight is None:  # the ellipsis
                    ax.text(column + 0.5, y + 0.5, text, ha="center", **mono)
                    continue
                shade = norm(weight)
                ax.add_patch(Rectangle((column, y), len(text), 1, color=cmap(shade), lw=0))
                ink = "white" if abs(shade - 0.5) > 0.35 else "black"
                bold = "bold" if abs(weight) >= abs(top[-1]["weight"]) else "normal"
                middle = column + len(text) / 2
                ax.text(middle, y + 0.5, text, ha="center", color=ink, weight=bold, **mono)
            y += LINE
        y += GAP
    bar = fig.colorbar(
        ScalarMappable(norm, cmap),
        cax=fig.add_axes((0.25, 0.55 / fig_h, 0.5, 0.15 / fig_h)),
        orientation="horizontal",
        label=f"word weight: log-odds of the predicted label it adds (bold: {STRONG} strongest)",
    )
    bar.set_ticks(
        [-limit, 0, limit],
        labels=[f"{-limit:.2f}: against it", "0", f"+{limit:.2f}: toward it"],
    )
    _save(fig, path)
