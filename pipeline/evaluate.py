"""Stage 3, evaluate: score the saved classifier on the evaluation split.

Reports accuracy, precision, recall, F1, ROC-AUC, the confusion matrix and n, next to the same
numbers for a most-frequent-class baseline (`DummyClassifier`), accuracy by sentence length and
the most confidently wrong sentences. Writes ``reports/<run>/metrics.json``, ``report.md`` and
four figures (confusion matrix, ROC curve, reliability, accuracy by length), and prints a table.

    python -m pipeline.evaluate --config configs/sst2-minilm.yaml --data ../shared/data/sst2-glue
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from pipeline import PipelineError, cli
from pipeline.config import Config
from pipeline.data import LABEL_NAMES, load_splits
from pipeline.features import FEATURES_ROOT, load_arrays, load_features
from pipeline.io import atomic_path, write_json, write_text
from pipeline.probe import MODELS_ROOT, load_probe

log = logging.getLogger(__name__)

REPORTS_ROOT = Path("reports")
FIGURES = {
    name: f"{name}.png"
    for name in ("confusion_matrix", "roc_curve", "reliability", "accuracy_by_length")
}
LENGTH_BUCKETS = ((1, 5), (6, 10), (11, 15), (16, 20), (21, 30), (31, np.inf))
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def scores(y_true: np.ndarray, y_pred: np.ndarray, p_positive: np.ndarray) -> dict[str, Any]:
    """The binary metrics for one set of predictions (positive class = 1)."""
    both_classes = len(np.unique(y_true)) == 2
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, p_positive)) if both_classes else None,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist(),
        "n": len(y_true),
    }


def evaluate(
    config: Config,
    features_root: Path = FEATURES_ROOT,
    models_root: Path = MODELS_ROOT,
    reports_root: Path = REPORTS_ROOT,
) -> dict[str, Any]:
    """Score the run's classifier and the baseline on the eval split; write the reports."""
    splits = load_splits(config.data)
    folder, _ = load_features(config, features_root, splits)
    classifier, model_meta = load_probe(models_root / config.run)
    if model_meta["features"] != folder.name:
        raise PipelineError(
            f"the classifier in {models_root / config.run} was trained on features "
            f"{model_meta['features']}, but this config gives {folder.name}; run `make train` again"
        )
    x_train, y_train = load_arrays(folder, "train")
    x_eval, y_eval = load_arrays(folder, "eval")
    baseline = DummyClassifier(strategy="most_frequent").fit(x_train, y_train)
    p_positive = classifier.predict_proba(x_eval)[:, 1]
    p_baseline = baseline.predict_proba(x_eval)[:, 1]
    texts = splits["eval"].texts
    metrics = {
        "run": config.run,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "encoder": model_meta["encoder"]["name"],
        "pooling": model_meta["encoder"]["pooling"],
        "layer": model_meta["encoder"]["layer"],
        "C": model_meta["C"],
        "cv_accuracy": model_meta["cv_accuracy"],
        "features": folder.name,
        "classifier": scores(y_eval, (p_positive >= 0.5).astype(np.int64), p_positive),
        "most_frequent_baseline": scores(y_eval, (p_baseline >= 0.5).astype(np.int64), p_baseline),
        "by_length": by_length(texts, y_eval, p_positive),
        "most_confidently_wrong": confidently_wrong(texts, y_eval, p_positive),
        "figures": FIGURES,
    }
    out = reports_root / config.run
    write_figures(out, metrics, y_eval, p_positive)
    write_json(out / "metrics.json", metrics)
    write_text(out / "report.md", markdown_report(metrics))
    print(table(metrics))
    log.info("evaluate: wrote %s and %s", out / "metrics.json", out / "report.md")
    return metrics


def by_length(texts: list[str], y_true: np.ndarray, p_positive: np.ndarray) -> list[dict]:
    """Accuracy per bucket of sentence length in words."""
    words = np.array([len(text.split()) for text in texts])
    correct = (p_positive >= 0.5) == y_true
    rows = []
    for low, high in LENGTH_BUCKETS:
        inside = (words >= low) & (words <= high)
        if inside.any():
            name = f"{low}+" if high == np.inf else f"{low}-{high}"
            rows.append(
                {"words": name, "n": int(inside.sum()), "accuracy": float(correct[inside].mean())}
            )
    return rows


def confidently_wrong(
    texts: list[str], y_true: np.ndarray, p_positive: np.ndarray, n: int = 10
) -> list[dict]:
    """The `n` misclassified sentences with the most confident predictions."""
    p_true = np.where(y_true == 1, p_positive, 1 - p_positive)
    wrong = np.flatnonzero(p_true < 0.5)
    worst = wrong[np.argsort(p_true[wrong], kind="stable")][:n]
    return [
        {"text": texts[i], "label": LABEL_NAMES[y_true[i]], "p_wrong_label": float(1 - p_true[i])}
        for i in worst
    ]


def write_figures(
    out: Path, metrics: dict[str, Any], y_true: np.ndarray, p_positive: np.ndarray
) -> None:
    """The four PNGs of an evaluation, next to metrics.json."""
    from pipeline import plots

    out.mkdir(parents=True, exist_ok=True)
    title = metrics["run"]
    drawings = {
        "confusion_matrix": lambda path: plots.confusion(
            metrics["classifier"]["confusion_matrix"], list(LABEL_NAMES), path, title
        ),
        "roc_curve": lambda path: plots.roc(y_true, p_positive, path, title),
        "reliability": lambda path: plots.reliability(y_true, p_positive, path, title),
        "accuracy_by_length": lambda path: plots.by_length(metrics["by_length"], path, title),
    }
    for name, draw in drawings.items():
        with atomic_path(out / FIGURES[name]) as tmp:
            draw(tmp)


def table(metrics: dict[str, Any]) -> str:
    """A fixed-width table of classifier vs baseline."""
    rows = [f"{'metric':<10} {'classifier':>10} {'baseline':>10}"]
    for key in (*METRICS, "n"):
        values = [metrics[m][key] for m in ("classifier", "most_frequent_baseline")]
        rows.append(f"{key:<10} " + " ".join(f"{_fmt(v):>10}" for v in values))
    return "\n".join(rows)


def markdown_report(metrics: dict[str, Any]) -> str:
    """A short human-readable report of one evaluation."""
    clf, base = metrics["classifier"], metrics["most_frequent_baseline"]
    (tn, fp), (fn, tp) = clf["confusion_matrix"]
    lines = [
        f"# {metrics['run']}: evaluation",
        "",
        f"Encoder `{metrics['encoder']}`, {metrics['pooling']} pooling of layer "
        f"{metrics['layer']}, "
        f"logistic regression with C={metrics['C']:g} (CV accuracy {metrics['cv_accuracy']:.4f}).",
        f"Features `{metrics['features']}`; {clf['n']} evaluation sentences; {metrics['created']}.",
        "",
        "| metric | classifier | most-frequent baseline |",
        "|---|---:|---:|",
        *(f"| {key} | {_fmt(clf[key])} | {_fmt(base[key])} |" for key in METRICS),
        "",
        "Confusion matrix (rows: true, columns: predicted)",
        "",
        "| | negative | positive |",
        "|---|---:|---:|",
        f"| negative | {tn} | {fp} |",
        f"| positive | {fn} | {tp} |",
        "",
        "Accuracy by sentence length",
        "",
        "| words | n | accuracy |",
        "|---|---:|---:|",
        *(f"| {r['words']} | {r['n']} | {r['accuracy']:.4f} |" for r in metrics["by_length"]),
        "",
        "Most confidently wrong",
        "",
        "| true label | p(wrong label) | sentence |",
        "|---|---:|---|",
        *(
            f"| {w['label']} | {w['p_wrong_label']:.3f} | {w['text'].replace('|', '&#124;')} |"
            for w in metrics["most_confidently_wrong"]
        ),
        "",
        *(f"![{name}]({file})" for name, file in metrics["figures"].items()),
        "",
    ]
    return "\n".join(lines)


def _fmt(value: float | int | None) -> str:
    if value is None:
        return "n/a"
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def main() -> None:
    """Command line: evaluate the classifier of a config."""
    parser = cli.stage_parser(__doc__)
    evaluate(cli.config_from_args(parser.parse_args()))


if __name__ == "__main__":
    cli.run(main)
