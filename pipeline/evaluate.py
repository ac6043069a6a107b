"""Stage 3, evaluate: score the saved classifier, next to a most-frequent-class baseline.

The protocol decides what is scored: ``split`` and ``holdout`` score the eval split;
``kfold`` (no eval split) scores out-of-fold predictions of a nested cross-validation on train
(outer ``data.folds`` folds, C chosen inside each by ``train.cv``-fold CV, as train does);
``mteb`` scores MTEB's few-shot experiments on the eval split (`pipeline.studies.mteb`): their mean
accuracy and macro-F1, each experiment's scores beside them, the other metrics and the figures over
all the experiments' predictions. A labeled test split is scored too. Reports accuracy, macro-F1,
ROC-AUC (one-vs-rest macro for K classes), per-class precision/recall/F1 and the confusion matrix;
for two classes also the positive class's precision, recall and F1. Writes
``reports/<run>/metrics.json``, ``report.md`` and four figures (confusion matrix, ROC,
reliability, accuracy by length), and prints a table.

    python -m pipeline.evaluate --config configs/sst2-minilm.yaml --data ../shared/data/sst2-glue
"""

from __future__ import annotations

import logging
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
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from pipeline import PipelineError, cli, plots
from pipeline.config import Config
from pipeline.data.splits import load_splits
from pipeline.features import FEATURES_ROOT, load_arrays, load_features
from pipeline.io import write_json, write_text
from pipeline.probe import MODELS_ROOT, load_probe
from pipeline.report import REPORTS_ROOT, markdown_report, table
from pipeline.train import logistic_regression_cv

log = logging.getLogger(__name__)

LENGTH_BUCKETS = ((1, 5), (6, 10), (11, 15), (16, 20), (21, 30), (31, np.inf))


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


def out_of_fold_proba(config: Config, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, list]:
    """Nested CV: probabilities for each row from a model that never saw it, and fold accuracies.

    The outer folds are stratified (``data.folds``, seeded); inside each, C is chosen by the same
    cross-validated grid search that train uses.
    """
    outer = StratifiedKFold(config.data.folds, shuffle=True, random_state=config.data.seed)
    proba = cross_val_predict(
        logistic_regression_cv(config), x, y, cv=outer, method="predict_proba"
    )
    correct = proba.argmax(axis=1) == y
    return proba, [float(correct[test].mean()) for _, test in outer.split(x, y)]


def mteb_proba(
    config: Config, x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """MTEB's experiments (`pipeline.studies.mteb`) scored on (x, y): the labels and probabilities
    of every experiment stacked (so their accuracy is the mean), and MTEB's own scores."""
    from pipeline.studies import mteb

    data = config.data
    log.info("evaluate: MTEB's protocol, %s", mteb_setting(config))
    result, probas = mteb.evaluate(
        x_train, y_train, x, y, data.samples_per_label, data.experiments, data.seed
    )
    return np.tile(y, len(probas)), probas.reshape(-1, probas.shape[-1]), result


def mteb_setting(config: Config) -> str:
    return f"{config.data.experiments} experiments x {config.data.samples_per_label} per label"


def mteb_summary(result: dict[str, Any]) -> dict[str, Any]:
    """MTEB's means as the classifier's accuracy and macro-F1, its scores beside them."""
    return {"accuracy": result["accuracy"], "macro_f1": result["f1"], "mteb": result}


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
    x_train, y_train = load_arrays(folder, "train")
    folds = experiments = None
    if config.data.protocol == "kfold":
        log.info("evaluate: %d-fold nested cross-validation on train", config.data.folds)
        role, y_eval = "train", y_train
        proba, folds = out_of_fold_proba(config, x_train, y_train)
    elif config.data.protocol == "mteb":
        role, (x_eval, y_eval) = "eval", load_arrays(folder, "eval")
        y_eval, proba, experiments = mteb_proba(config, x_train, y_train, x_eval, y_eval)
    else:
        role = "eval"
        x_eval, y_eval = load_arrays(folder, "eval")
        proba = classifier.predict_proba(x_eval)
    texts = splits[role].texts * (len(y_eval) // len(splits[role]))  # mteb: every experiment's
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
        "scored": role if folds is None else f"train, out of fold ({len(folds)} folds)",
        "classifier": scores(y_eval, proba, names),
        "most_frequent_baseline": scores(
            y_eval, majority_proba(y_train, len(y_eval), len(names)), names
        ),
        "by_length": by_length(texts, y_eval, proba),
        "most_confidently_wrong": confidently_wrong(texts, y_eval, proba, names),
        "figures": plots.FIGURES,
    }
    if experiments is not None:
        metrics["scored"] = f"eval, MTEB's protocol: {mteb_setting(config)}, predictions pooled"
        metrics["classifier"].update(mteb_summary(experiments))
    if folds is not None:
        metrics["folds"] = {
            "accuracy": folds,
            "mean": float(np.mean(folds)),
            "std": float(np.std(folds)),
        }
    if features_meta["splits"].get("test", {}).get("labeled"):
        x_test, y_test = load_arrays(folder, "test")
        if experiments is None:
            test_proba = classifier.predict_proba(x_test)
        else:
            y_test, test_proba, test_experiments = mteb_proba(
                config, x_train, y_train, x_test, y_test
            )
        metrics["test"] = {
            "classifier": scores(y_test, test_proba, names),
            "most_frequent_baseline": scores(
                y_test, majority_proba(y_train, len(y_test), len(names)), names
            ),
        }
        if experiments is not None:
            metrics["test"]["classifier"].update(mteb_summary(test_experiments))
    out = reports_root / config.run
    plots.evaluation_figures(out, metrics, y_eval, proba)
    write_json(out / "metrics.json", metrics)
    write_text(out / "report.md", markdown_report(metrics))
    print(table(metrics))
    log.info("evaluate: wrote %s and %s", out / "metrics.json", out / "report.md")
    return metrics


def by_length(texts: list[str], y_true: np.ndarray, proba: np.ndarray) -> list[dict]:
    """Accuracy per bucket of sentence length in words."""
    words = np.array([len(text.split()) for text in texts])
    correct = proba.argmax(axis=1) == y_true
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
    texts: list[str], y_true: np.ndarray, proba: np.ndarray, names: list[str], n: int = 10
) -> list[dict]:
    """The `n` misclassified sentences whose wrong label got the highest probability."""
    predicted = proba.argmax(axis=1)
    p_predicted = proba[np.arange(len(proba)), predicted]
    wrong = np.flatnonzero(predicted != y_true)
    worst = wrong[np.argsort(-p_predicted[wrong], kind="stable")][:n]
    return [
        {
            "text": texts[i],
            "label": names[y_true[i]],
            "predicted": names[predicted[i]],
            "p_wrong_label": float(p_predicted[i]),
        }
        for i in worst
    ]


def main() -> None:
    """Command line: evaluate the classifier of a config."""
    parser = cli.stage_parser(__doc__)
    evaluate(cli.config_from_args(parser.parse_args()))


if __name__ == "__main__":
    cli.run(main)
