"""Stage 3, evaluate: score the saved classifier, next to a most-frequent-class baseline.

The data's protocol (`pipeline.protocols`) decides what is scored: ``split`` and ``holdout`` score
the eval split; ``kfold`` (no eval split) scores out-of-fold predictions of a nested
cross-validation on train (outer ``data.folds`` folds, C chosen inside each by ``train.cv``-fold
CV, as train does); ``mteb`` scores MTEB's few-shot experiments on the eval split (`pipeline.mteb`):
their mean accuracy and macro-F1, each experiment's scores beside them, the other metrics and the
figures over all the experiments' predictions. A labeled test split is scored the same way.
Reports accuracy, macro-F1, ROC-AUC (one-vs-rest macro for K classes), per-class
precision/recall/F1 and the confusion matrix; for two classes also the positive class's
precision, recall and F1. Writes ``reports/<run>/metrics.json``, ``report.md`` and four figures
(confusion matrix, ROC, reliability, accuracy by length), and prints a table. The EXPLAINED most
confidently wrong sentences are explained (`Classifier.explain`: each word's weight toward the
saved classifier's label) in metrics.json, the report and a fifth figure, when the saved classifier
made the scored predictions and its encoder can be loaded; otherwise the report says why not.

    python -m pipeline.evaluate --config configs/sst2-minilm.yaml --data ../shared/data/sst2-glue
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from pipeline import PipelineError, cli, plots
from pipeline.classifier import Classifier
from pipeline.config import Config
from pipeline.data.splits import load_splits
from pipeline.explain import DEFAULT_METHOD
from pipeline.features import FEATURES_ROOT, load_arrays, load_features
from pipeline.io import write_json, write_text
from pipeline.model_card import write_model_card
from pipeline.probe import MODELS_ROOT, load_probe
from pipeline.protocols import PROTOCOLS, Scored
from pipeline.report import REPORTS_ROOT, markdown_report, table

log = logging.getLogger(__name__)

LENGTH_BUCKETS = ((1, 5), (6, 10), (11, 15), (16, 20), (21, 30), (31, np.inf))
EXPLAINED = 8  # most confidently wrong sentences explained; each costs up to 100 encoder passes


def scores(y_true: np.ndarray, proba: np.ndarray, names: list[str]) -> dict[str, Any]:
    """The metrics of one set of class probabilities (n x K) against the true class ids."""
    classes = list(range(len(names)))
    y_pred = proba.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    every_class = len(np.unique(y_true)) == len(names)
    if len(names) == 2:
        binary = {"precision": float(precision[1]), "recall": float(recall[1]), "f1": float(f1[1])}
        auc = roc_auc_score(y_true, proba[:, 1]) if every_class else None
    else:
        binary = {}
        auc = (
            roc_auc_score(y_true, proba, multi_class="ovr", labels=classes) if every_class else None
        )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        **binary,
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)
        ),
        "roc_auc": None if auc is None else float(auc),
        "per_class": [
            {"label": name, "precision": float(p), "recall": float(r), "f1": float(f), "n": int(n)}
            for name, p, r, f, n in zip(names, precision, recall, f1, support, strict=True)
        ],
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        "n": len(y_true),
    }


def majority_proba(y_train: np.ndarray, n: int, k: int) -> np.ndarray:
    """The most-frequent-class baseline's probabilities: the train majority class, always."""
    proba = np.zeros((n, k))
    proba[:, np.bincount(y_train, minlength=k).argmax()] = 1.0
    return proba


def scored_metrics(
    scored: Scored, y_train: np.ndarray, names: list[str]
) -> dict[str, dict[str, Any]]:
    """The classifier's scores (the protocol's own over the pooled ones) and the baseline's."""
    n, k = len(scored.y), len(names)
    return {
        "classifier": {**scores(scored.y, scored.proba, names), **scored.scores},
        "most_frequent_baseline": scores(scored.y, majority_proba(y_train, n, k), names),
    }


def evaluate(
    config: Config,
    features_root: Path = FEATURES_ROOT,
    models_root: Path = MODELS_ROOT,
    reports_root: Path = REPORTS_ROOT,
) -> dict[str, Any]:
    """Score the run's classifier and the baseline by the data's protocol; write the reports."""
    splits = load_splits(config.data)
    folder, features_meta = load_features(config, features_root, splits)
    classifier, model_meta = load_probe(models_root / config.run)
    if model_meta["features"] != folder.name:
        raise PipelineError(
            f"the classifier in {models_root / config.run} was trained on features "
            f"{model_meta['features']}, but this config gives {folder.name}; run `make train` again"
        )
    names = model_meta["labels"]
    protocol = PROTOCOLS[config.data.protocol]
    train = load_arrays(folder, "train")
    held = load_arrays(folder, "eval") if "eval" in splits else None  # kfold: none
    scored = protocol(config, train, held, classifier)
    role = "train" if scored.on_train else "eval"
    texts = splits[role].texts
    wrong = confidently_wrong(texts, scored.y, scored.proba, names, rows=scored.rows)
    saved = config.data.protocol != "mteb" and not scored.on_train  # else other models scored
    explained = explain_wrong(models_root / config.run, wrong[:EXPLAINED], saved)
    metrics = {
        "run": config.run,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "protocol": config.data.protocol,
        "encoder": model_meta["encoder"]["name"],
        "pooling": model_meta["encoder"]["pooling"],
        "layer": model_meta["encoder"]["layer"],
        "labels": names,
        "C": model_meta["C"],
        "cv_accuracy": model_meta["cv_accuracy"],
        "features": folder.name,
        "scored": f"{role}, {scored.note}" if scored.note else role,
        **scored_metrics(scored, train[1], names),
        "by_length": by_length(texts, scored.y, scored.proba, scored.rows),
        "most_confidently_wrong": wrong,
        "wrong_explained": explained,
        "figures": plots.figures(explained),
        **scored.details,
    }
    if features_meta["splits"].get("test", {}).get("labeled"):
        test = protocol(config, train, load_arrays(folder, "test"), classifier)
        metrics["test"] = scored_metrics(test, train[1], names)
    out = reports_root / config.run
    plots.evaluation_figures(out, metrics, scored.y, scored.proba)
    write_json(out / "metrics.json", metrics)
    write_text(out / "report.md", markdown_report(metrics))
    write_model_card(models_root / config.run, metrics)
    print(table(metrics))
    log.info("evaluate: wrote %s and %s", out / "metrics.json", out / "report.md")
    return metrics


def by_length(
    texts: Sequence[str], y_true: np.ndarray, proba: np.ndarray, rows: np.ndarray | None = None
) -> list[dict]:
    """Accuracy per bucket of sentence length in words; `rows`: each scored row's index in
    `texts` (default: the texts in order). Each text is read once, however often it is scored."""
    words = np.array([len(text.split()) for text in texts], dtype=np.int64)
    words = words if rows is None else words[rows]
    correct = proba.argmax(axis=1) == y_true
    buckets = []
    for low, high in LENGTH_BUCKETS:
        inside = (words >= low) & (words <= high)
        if inside.any():
            name = f"{low}+" if high == np.inf else f"{low}-{high}"
            buckets.append(
                {"words": name, "n": int(inside.sum()), "accuracy": float(correct[inside].mean())}
            )
    return buckets


def confidently_wrong(
    texts: Sequence[str],
    y_true: np.ndarray,
    proba: np.ndarray,
    names: list[str],
    n: int = 10,
    rows: np.ndarray | None = None,
) -> list[dict]:
    """The `n` misclassified sentences whose wrong label got the highest probability; `rows` as
    for `by_length`."""
    predicted = proba.argmax(axis=1)
    p_predicted = proba[np.arange(len(proba)), predicted]
    wrong = np.flatnonzero(predicted != y_true)
    worst = wrong[np.argsort(-p_predicted[wrong], kind="stable")][:n]
    return [
        {
            "text": texts[i if rows is None else rows[i]],
            "label": names[y_true[i]],
            "predicted": names[predicted[i]],
            "p_wrong_label": float(p_predicted[i]),
        }
        for i in worst
    ]


def explain_wrong(model_dir: Path, wrong: list[dict], saved: bool) -> dict[str, Any]:
    """The words' weights (`Classifier.explain`, one call) of the `wrong` sentences, or why there
    are none: `saved` False (other models made the scored predictions), no sentence wrong, or an
    encoder that cannot be loaded (the report says so instead of failing)."""
    if not saved:
        return {
            "sentences": [],
            "reason": "the scored predictions are other classifiers' (out of fold, or MTEB's)",
        }
    if not wrong:
        return {"sentences": [], "reason": "no sentence was classified wrong"}
    try:  # torch: the engine that made the features, so the scored predictions are explained
        classifier = Classifier.load(model_dir, engine="torch")
    except PipelineError as err:
        log.warning("evaluate: not explaining the wrong sentences: %s", err)
        return {"sentences": [], "reason": f"the encoder cannot be loaded ({err})"}
    log.info("evaluate: explaining the %d most confidently wrong sentences", len(wrong))
    rows = classifier.explain([w["text"] for w in wrong], DEFAULT_METHOD)
    return {
        "method": DEFAULT_METHOD,
        "sentences": [
            {
                "text": w["text"],
                "label": w["label"],
                "predicted": row["label"],
                "probability": row["probability"],
                "words": [
                    {k: word[k] for k in ("word", "start", "end", "weight")}
                    for word in row["words"]
                ],
            }
            for w, row in zip(wrong, rows, strict=True)
        ],
    }


def main() -> None:
    """Command line: evaluate the classifier of a config."""
    parser = cli.stage_parser(__doc__)
    evaluate(cli.config_from_args(parser.parse_args()))


if __name__ == "__main__":
    cli.run(main)
