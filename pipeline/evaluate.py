"""Stage 3, evaluate: score the saved classifier on the evaluation split.

Reports accuracy, precision, recall, F1, ROC-AUC, the confusion matrix and n, next to the same
numbers for a most-frequent-class baseline (`DummyClassifier`). Writes
``reports/<run>/metrics.json`` and ``reports/<run>/report.md`` and prints a small table.

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
from pipeline.features import FEATURES_ROOT, load_arrays, load_features
from pipeline.io import atomic_path, write_json
from pipeline.probe import load_probe
from pipeline.train import MODELS_ROOT

log = logging.getLogger(__name__)

REPORTS_ROOT = Path("reports")
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
    folder, _ = load_features(config, features_root)
    classifier, model_meta = load_probe(models_root / config.run)
    if model_meta["features"] != folder.name:
        raise PipelineError(
            f"the classifier in {models_root / config.run} was trained on features "
            f"{model_meta['features']}, but this config gives {folder.name}; run `make train` again"
        )
    x_train, y_train = load_arrays(folder, "train")
    x_eval, y_eval = load_arrays(folder, "eval")
    baseline = DummyClassifier(strategy="most_frequent").fit(x_train, y_train)
    results = {}
    for name, model in (("classifier", classifier), ("most_frequent_baseline", baseline)):
        p_positive = model.predict_proba(x_eval)[:, 1]
        results[name] = scores(y_eval, (p_positive >= 0.5).astype(np.int64), p_positive)
    metrics = {
        "run": config.run,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "encoder": model_meta["encoder"]["name"],
        "pooling": model_meta["encoder"]["pooling"],
        "layer": model_meta["encoder"]["layer"],
        "C": model_meta["C"],
        "cv_accuracy": model_meta["cv_accuracy"],
        "features": folder.name,
        **results,
    }
    out = reports_root / config.run
    write_json(out / "metrics.json", metrics)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(markdown_report(metrics), encoding="utf-8")
    print(table(metrics))
    log.info("evaluate: wrote %s and %s", out / "metrics.json", out / "report.md")
    return metrics


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
