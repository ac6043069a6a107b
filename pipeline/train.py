"""Stage 2, train: fit a logistic regression on the cached train features.

C is chosen by stratified k-fold cross-validation on the train split only, over the small
log-spaced grid ``train.cs``; the best C is then refit on the whole train split. The classifier is
saved to ``models/<run>/classifier.npz`` (plain arrays, see `pipeline.probe`) with a ``model.json``
that records what made it (encoder and the stamps of its weight files, pooling, layer, max_length,
features, the data and its splits, C, CV accuracy, library versions) and the classifier file's
SHA-256, checked before it is loaded; and a model card, ``README.md`` (`pipeline.model_card`).
``train.save_joblib`` adds the fitted scikit-learn object as ``classifier.joblib`` for your own
code; the pipeline itself never unpickles anything.

    python -m pipeline.train --config configs/sst2-minilm.yaml --data ../shared/data/sst2-glue
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline import PipelineError, cli
from pipeline.config import Config, to_dict
from pipeline.features import FEATURES_ROOT, load_arrays, load_features
from pipeline.io import atomic_path, sha256_file, write_json
from pipeline.model_card import data_entry, write_model_card
from pipeline.probe import MODELS_ROOT, PROBE_FILE, LinearProbe

log = logging.getLogger(__name__)

JOBLIB_FILE = "classifier.joblib"
VERSIONED = ("scikit-learn", "transformers", "torch", "numpy")


def logistic_regression_cv(config: Config) -> GridSearchCV:
    """(Standardisation and) logistic regression, C chosen by stratified k-fold CV accuracy."""
    steps = [StandardScaler()] if config.train.standardize else []
    return GridSearchCV(
        make_pipeline(*steps, LogisticRegression(max_iter=config.train.max_iter)),
        {"logisticregression__C": config.train.cs},
        cv=StratifiedKFold(config.train.cv, shuffle=True, random_state=config.data.seed),
        scoring="accuracy",
        n_jobs=-1,
    )


def check_class_counts(y: np.ndarray, names: list[str], folds: int) -> None:
    """Refuse data where some class has fewer sentences than the cross-validation has folds."""
    counts = np.bincount(y, minlength=len(names))
    if counts.min() < folds:
        found = ", ".join(f"{count} {name}" for name, count in zip(names, counts, strict=True))
        raise PipelineError(
            f"the train split has {found} sentences: too few for {folds}-fold "
            "cross-validation (lower train.cv or add data)"
        )


def train(
    config: Config, features_root: Path = FEATURES_ROOT, models_root: Path = MODELS_ROOT
) -> Path:
    """Fit, cross-validate and save the classifier for `config`; return its folder."""
    folder, features_meta = load_features(config, features_root)
    x, y = load_arrays(folder, "train")
    names = features_meta["labels"]
    check_class_counts(y, names, config.train.cv)
    search = logistic_regression_cv(config)
    log.info(
        "train: %d sentences x %d features, %d classes, C in %s, %d-fold CV",
        len(y),
        x.shape[1],
        len(names),
        config.train.cs,
        config.train.cv,
    )
    search.fit(x, y)
    best_c = search.best_params_["logisticregression__C"]
    probe = LinearProbe.from_sklearn(search.best_estimator_)
    log.info("train: best C=%g, CV accuracy %.4f", best_c, search.best_score_)

    model_dir = models_root / config.run
    files = {"classifier": {"file": PROBE_FILE, "sha256": probe.save(model_dir / PROBE_FILE)}}
    if config.train.save_joblib:
        with atomic_path(model_dir / JOBLIB_FILE) as tmp:
            joblib.dump(search.best_estimator_, tmp)
            files["joblib"] = {"file": JOBLIB_FILE, "sha256": sha256_file(tmp)}
    write_json(
        model_dir / "model.json",
        {
            "run": config.run,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "encoder": to_dict(config.encoder),
            "weights_sha256": features_meta["inputs"]["weights_sha256"],
            "weights_stamps": features_meta.get("stamps", {}).get("inputs", {}).get("weights"),
            "features": folder.name,
            "data": data_entry(config.data, features_meta["splits"]),
            "labels": names,
            "n_train": len(y),
            "dim": int(x.shape[1]),
            "standardize": config.train.standardize,
            "C": best_c,
            "cv_accuracy": round(float(search.best_score_), 5),
            "cv_folds": config.train.cv,
            "cv_grid": {
                str(c): round(float(s), 5)
                for c, s in zip(config.train.cs, search.cv_results_["mean_test_score"], strict=True)
            },
            **files,
            "versions": {name: version(name) for name in VERSIONED},
        },
    )
    write_model_card(model_dir)
    log.info("train: saved %s", model_dir)
    return model_dir


def main() -> None:
    """Command line: train the classifier for a config."""
    parser = cli.stage_parser(__doc__)
    train(cli.config_from_args(parser.parse_args()))


if __name__ == "__main__":
    cli.run(main)
