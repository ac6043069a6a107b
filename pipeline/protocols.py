"""The evaluation protocols, one table: what a run scores, and how.

Each protocol takes the config, train's cached arrays, a held-out split's arrays (eval or test;
None when there is none) and the trained classifier (None: fitted here as `train` fits it), and
returns a `Scored`: the true labels, the class probabilities and, per scored row, its row in the
split it came from, so that its text can be found. With nothing held out a protocol scores train
itself, out of fold. ``make evaluate`` scores eval (else train) and test with the data's protocol;
``make suite`` scores its tasks with them. The names are `pipeline.config.PROTOCOLS`.

- ``split``, ``holdout``: the classifier predicts the held-out rows (holdout's eval is a stratified
  part of train, held out by `pipeline.data.splits`).
- ``kfold``: nested cross-validation on train: ``data.folds`` stratified outer folds, C chosen
  inside each as train chooses it. A held-out (test) split is scored as ``split`` scores it.
- ``mteb``: MTEB's few-shot experiments (`pipeline.mteb`), every experiment's predictions
  stacked, so their accuracy is the mean; MTEB's own scores beside them. Nothing held out:
  MTEB's 5-fold cross-validation of train.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from pipeline import PipelineError, mteb
from pipeline.config import Config
from pipeline.train import logistic_regression_cv

log = logging.getLogger(__name__)

Arrays = tuple[np.ndarray, np.ndarray]  # features (n x d) and class ids (n)


@dataclass
class Scored:
    """What a protocol scored: a row per prediction, its true class and class probabilities.

    `rows` index the texts of the split the predictions are of: train's when `on_train`, else
    the held-out split's (MTEB's experiments each predict every held-out row once).
    """

    y: np.ndarray
    proba: np.ndarray  # n x K
    rows: np.ndarray
    on_train: bool = False
    note: str = ""  # how the rows were scored, in a few words, for the report
    scores: dict[str, Any] = field(default_factory=dict)  # the protocol's own, over the pooled
    details: dict[str, Any] = field(default_factory=dict)  # more for metrics.json (fold scores)

    @property
    def accuracy(self) -> float:
        """The protocol's own accuracy (MTEB's mean over experiments), else the pooled one."""
        return self.scores.get("accuracy", float(np.mean(self.proba.argmax(axis=1) == self.y)))


# (config, train, held out or None, trained classifier or None) -> what was scored
Protocol = Callable[[Config, Arrays, Arrays | None, Any], Scored]


def split(config: Config, train: Arrays, held: Arrays | None, model: Any = None) -> Scored:
    """Train -> held out: the classifier's probabilities for every held-out row."""
    if held is None:
        raise PipelineError(f"data.protocol={config.data.protocol} needs an eval split to score")
    if model is None:
        model = logistic_regression_cv(config).fit(*train)
    x, y = held
    return Scored(y, model.predict_proba(x), np.arange(len(y)))


def kfold(config: Config, train: Arrays, held: Arrays | None, model: Any = None) -> Scored:
    """Out-of-fold probabilities for every train row from a model that never saw it, and the
    accuracy of each outer fold; a held-out split is scored as `split` scores it."""
    if held is not None:
        return split(config, train, held, model)
    x, y = train
    log.info("kfold: %d-fold nested cross-validation on train", config.data.folds)
    outer = StratifiedKFold(config.data.folds, shuffle=True, random_state=config.data.seed)
    search = logistic_regression_cv(config)
    proba = cross_val_predict(search, x, y, cv=outer, method="predict_proba")
    correct = proba.argmax(axis=1) == y
    folds = [float(correct[test].mean()) for _, test in outer.split(x, y)]
    summary = {"accuracy": folds, "mean": float(np.mean(folds)), "std": float(np.std(folds))}
    note = f"out of fold ({len(folds)} folds)"
    return Scored(y, proba, np.arange(len(y)), True, note, details={"folds": summary})


def mteb_protocol(config: Config, train: Arrays, held: Arrays | None, model: Any = None) -> Scored:
    """MTEB's experiments on the held-out rows (else its cross-validation of train): every
    prediction, and MTEB's means as the accuracy and macro-F1 with all its scores beside them.
    `model` is not used: MTEB fits its own."""
    data = config.data
    if held is None:
        result, rows, proba = mteb.cross_validation(*train, data.samples_per_label, data.seed)
        note = f"MTEB's {mteb.FOLDS}-fold cross-validation x {data.samples_per_label} per label"
        scored = Scored(train[1][rows], proba, rows, True, note)
    else:
        setting = f"{data.experiments} experiments x {data.samples_per_label} per label"
        log.info("mteb: MTEB's protocol, %s", setting)
        result, probas = mteb.evaluate(
            *train, *held, data.samples_per_label, data.experiments, data.seed
        )
        every = np.tile(np.arange(len(held[1])), len(probas))  # experiment after experiment
        proba = probas.reshape(-1, probas.shape[-1])
        note = f"MTEB's protocol: {setting}, predictions pooled"
        scored = Scored(held[1][every], proba, every, note=note)
    scored.scores = {"accuracy": result["accuracy"], "macro_f1": result["f1"], "mteb": result}
    return scored


PROTOCOLS: dict[str, Protocol] = {
    "split": split,
    "holdout": split,
    "kfold": kfold,
    "mteb": mteb_protocol,
}
