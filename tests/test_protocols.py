"""The protocol table: each protocol's scored rows, labels and probabilities, on small arrays."""

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from pipeline import PipelineError, config, mteb
from pipeline.config import load_config
from pipeline.protocols import PROTOCOLS, Scored, kfold, mteb_protocol, split
from pipeline.train import logistic_regression_cv


@pytest.fixture
def arrays():
    """(train, held out): 3 classes, 5 features, a held-out part of 30 rows."""
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=120, p=[0.5, 0.3, 0.2])
    x = (rng.normal(size=(120, 5)) + y[:, None]).astype(np.float32)
    return (x[:90], y[:90]), (x[90:], y[90:])


@pytest.fixture
def cfg():
    folds = ["data.folds=3", "data.experiments=3", "data.samples_per_label=4"]
    return load_config(None, ["train.cs=[0.1,1.0]", "train.cv=2", *folds])


def test_the_table_has_a_protocol_for_every_name_the_config_accepts():
    assert tuple(PROTOCOLS) == config.PROTOCOLS
    assert PROTOCOLS["holdout"] is PROTOCOLS["split"] is split
    assert PROTOCOLS["kfold"] is kfold and PROTOCOLS["mteb"] is mteb_protocol


def test_split_scores_the_held_out_rows_with_the_classifier(arrays, cfg):
    train, (x, y) = arrays
    model = logistic_regression_cv(cfg).fit(*train)
    scored = split(cfg, train, (x, y), model)
    np.testing.assert_array_equal(scored.proba, model.predict_proba(x))
    assert scored.y is y and scored.rows.tolist() == list(range(30)) and not scored.on_train
    assert scored.accuracy == pytest.approx(model.score(x, y))
    assert (scored.note, scored.scores, scored.details) == ("", {}, {})
    fitted_here = split(cfg, train, (x, y))  # no classifier: fitted as train fits it
    np.testing.assert_array_equal(fitted_here.proba, scored.proba)
    with pytest.raises(PipelineError, match="needs an eval split"):
        split(cfg, train, None, model)


def test_kfold_scores_train_out_of_fold_else_the_held_out_rows(arrays, cfg):
    train, held = arrays
    scored = kfold(cfg, train, None)
    outer = StratifiedKFold(3, shuffle=True, random_state=42)
    expected = cross_val_predict(
        logistic_regression_cv(cfg), *train, cv=outer, method="predict_proba"
    )
    np.testing.assert_allclose(scored.proba, expected)
    assert scored.on_train and scored.rows.tolist() == list(range(90))
    assert scored.note == "out of fold (3 folds)"
    folds = scored.details["folds"]
    correct = expected.argmax(axis=1) == train[1]
    assert folds["accuracy"] == pytest.approx([correct[t].mean() for _, t in outer.split(*train)])
    assert folds["mean"] == pytest.approx(scored.accuracy)  # three folds of 30
    model = logistic_regression_cv(cfg).fit(*train)
    on_test = kfold(cfg, train, held, model)  # a test split: as split scores it
    np.testing.assert_array_equal(on_test.proba, model.predict_proba(held[0]))
    assert not on_test.on_train and on_test.details == {}


def test_mteb_stacks_every_experiments_predictions_of_the_held_out_rows(arrays, cfg):
    train, (x, y) = arrays
    scored = mteb_protocol(cfg, train, (x, y))
    result, probas = mteb.evaluate(*train, x, y, 4, 3, 42)
    assert scored.rows.tolist() == list(range(30)) * 3  # experiment after experiment
    np.testing.assert_array_equal(scored.y, np.tile(y, 3))
    np.testing.assert_array_equal(scored.proba, probas.reshape(90, 3))
    assert scored.scores == {
        "accuracy": result["accuracy"],
        "macro_f1": result["f1"],
        "mteb": result,
    }
    assert scored.accuracy == result["accuracy"]
    pooled = (scored.proba.argmax(axis=1) == scored.y).mean()
    assert pooled == pytest.approx(result["accuracy"])  # the same mean, experiments of one size
    assert scored.note == "MTEB's protocol: 3 experiments x 4 per label, predictions pooled"
    assert not scored.on_train


def test_mteb_without_a_held_out_split_cross_validates_train(arrays, cfg):
    train, _ = arrays
    scored = mteb_protocol(cfg, train, None)
    result, rows, proba = mteb.cross_validation(*train, 4, 42)
    assert scored.on_train and sorted(scored.rows.tolist()) == list(range(90))
    np.testing.assert_array_equal(scored.rows, rows)
    np.testing.assert_array_equal(scored.y, train[1][rows])
    np.testing.assert_array_equal(scored.proba, proba)
    assert scored.accuracy == result["accuracy"]
    assert len(scored.scores["mteb"]["scores_per_experiment"]) == mteb.FOLDS


def test_accuracy_is_the_protocols_own_else_over_the_scored_rows():
    y, proba = np.array([0, 1, 1, 0]), np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]])
    assert Scored(y, proba, np.arange(4)).accuracy == 0.75
    assert Scored(y, proba, np.arange(4), scores={"accuracy": 0.5}).accuracy == 0.5
