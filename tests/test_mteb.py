"""MTEB's classification protocol, checked against plain loops written the way MTEB's code reads."""

from collections import defaultdict

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, f1_score
from sklearn.model_selection import KFold

from pipeline import PipelineError, mteb
from pipeline.config import load_config


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=150, p=[0.5, 0.45, 0.05])  # class 2 has fewer than 8 rows at times
    x = rng.normal(size=(150, 5)) + y[:, None]
    return x.astype(np.float32), y


def mteb_undersample(labels, samples_per_label, seed, idxs=None):
    """AbsTaskClassification._undersample_data, on a list of labels."""
    if idxs is None:
        idxs = list(range(len(labels)))
    rng_state = np.random.RandomState(seed)
    rng_state.shuffle(idxs)
    label_counter = defaultdict(int)
    sampled_idxs = []
    for i in idxs:
        label = labels[i]
        if label_counter[label] < samples_per_label:
            sampled_idxs.append(i)
            label_counter[label] += 1
    return idxs, sampled_idxs


def mteb_scores(y_test, y_pred):
    return {
        "accuracy": accuracy_score(y_test, y_pred),
        "f1": f1_score(y_test, y_pred, average="macro"),
        "f1_weighted": f1_score(y_test, y_pred, average="weighted"),
    }


def test_draws_match_mtebs_undersampling(xy):
    _, y = xy
    labels, idxs, expected = y.tolist(), None, []
    for _ in range(4):
        idxs, sampled = mteb_undersample(labels, 8, 42, idxs)
        expected.append(sampled)
    got = mteb.draws(y, samples_per_label=8, experiments=4, seed=42)
    assert [rows.tolist() for rows in got] == expected
    assert got[0].tolist() != got[1].tolist()  # each experiment draws again
    assert np.bincount(y[got[0]]).tolist() == [8, 8, min(8, int((y == 2).sum()))]


def test_evaluate_matches_mtebs_experiment_loop(xy):
    x, y = xy
    x_train, y_train, x_test, y_test = x[:100], y[:100], x[100:], y[100:]
    labels, idxs, per_experiment = y_train.tolist(), None, []
    for _ in range(5):
        idxs, sampled = mteb_undersample(labels, 4, 7, idxs)
        clf = LogisticRegression(max_iter=100, random_state=7)
        clf.fit(x_train[sampled], y_train[sampled])
        per_experiment.append(mteb_scores(y_test, clf.predict(x_test)))
    result, probas = mteb.evaluate(x_train, y_train, x_test, y_test, 4, 5, seed=7)
    for key in ("accuracy", "f1", "f1_weighted"):
        assert result[key] == pytest.approx(np.mean([e[key] for e in per_experiment]))
        got = [e[key] for e in result["scores_per_experiment"]]
        assert got == pytest.approx([e[key] for e in per_experiment])
    assert result["ap"] is None  # three classes
    assert probas.shape == (5, len(x_test), 3)
    stacked = (probas.argmax(axis=2) == y_test).mean()
    assert stacked == pytest.approx(result["accuracy"])


def test_binary_tasks_report_the_average_precision_of_the_labels(xy):
    x, y = xy
    keep = y < 2
    x, y = x[keep], y[keep]
    result, _ = mteb.evaluate(x[:80], y[:80], x[80:], y[80:], experiments=2)
    first = mteb.draws(y[:80], 8, 1)[0]
    y_pred = LogisticRegression(random_state=42).fit(x[first], y[first]).predict(x[80:])
    ap = average_precision_score(y[80:], y_pred, average="macro")
    assert result["scores_per_experiment"][0]["ap"] == pytest.approx(ap)


def test_cross_validation_matches_mtebs_fold_loop(xy):
    x, y = xy
    idxs, accuracy = None, []
    for train_idx, val_idx in KFold(n_splits=5, shuffle=True, random_state=42).split(range(150)):
        idxs, sampled = mteb_undersample(y[train_idx].tolist(), 8, 42, idxs)
        clf = LogisticRegression(max_iter=100, random_state=42)
        clf.fit(x[train_idx][sampled], y[train_idx][sampled])
        accuracy.append(accuracy_score(y[val_idx], clf.predict(x[val_idx])))
    result, rows, proba = mteb.cross_validation(x, y)
    assert [e["accuracy"] for e in result["scores_per_experiment"]] == pytest.approx(accuracy)
    assert result["accuracy"] == pytest.approx(np.mean(accuracy))
    assert sorted(rows.tolist()) == list(range(150))  # every row once, out of fold
    assert proba.shape == (150, 3)
    held = [val_idx for _, val_idx in KFold(n_splits=5, shuffle=True, random_state=42).split(x)]
    assert rows.tolist() == np.concatenate(held).tolist()
    correct = proba.argmax(axis=1) == y[rows]
    ends = np.cumsum([len(h) for h in held])
    folds = [part.mean() for part in np.split(correct, ends[:-1])]
    assert folds == pytest.approx(accuracy)  # the probabilities are the fits' predictions


def test_the_suite_scores_test_else_dev_else_mtebs_cross_validation(xy):
    from pipeline.studies.suite import mteb_protocol

    x, y = xy
    config = load_config(None, ["data.experiments=3"])
    dev, test = (x[100:120], y[100:120]), (x[120:], y[120:])
    on_test, _ = mteb.evaluate(x[:100], y[:100], *test, experiments=3)
    assert mteb_protocol(config, (x[:100], y[:100]), dev, test) == {
        "accuracy": round(100 * on_test["accuracy"], 2),
        "scored": "test",
    }
    on_dev, _ = mteb.evaluate(x[:100], y[:100], *dev, experiments=3)
    assert mteb_protocol(config, (x[:100], y[:100]), dev, None) == {
        "accuracy": round(100 * on_dev["accuracy"], 2),
        "scored": "dev",
    }
    folds = mteb_protocol(config, (x, y), None, None)
    assert folds == {
        "accuracy": round(100 * mteb.cross_validation(x, y)[0]["accuracy"], 2),
        "scored": "5-fold CV",
    }


def test_config_takes_the_protocol_and_checks_its_keys():
    config = load_config(None, ["data.protocol=mteb", "data.samples_per_label=16"])
    assert (config.data.samples_per_label, config.data.experiments) == (16, 10)
    with pytest.raises(PipelineError, match=r"data\.samples_per_label must be int >= 1"):
        load_config(None, ["data.samples_per_label=0"])
    with pytest.raises(PipelineError, match=r"data\.experiments must be int"):
        load_config(None, ["data.experiments=ten"])


def test_evaluate_reports_mtebs_means_with_each_experiment(tiny_config, workdir):
    from pipeline.evaluate import evaluate
    from pipeline.features import build_features, load_arrays
    from pipeline.train import train

    config = load_config(tiny_config, ["data.protocol=mteb", "data.experiments=3"])
    folder = build_features(config, progress=False)
    train(config)
    metrics = evaluate(config)
    x, y = load_arrays(folder, "train")
    expected, _ = mteb.evaluate(x, y, *load_arrays(folder, "eval"), 8, 3)
    clf = metrics["classifier"]
    assert clf["accuracy"] == pytest.approx(expected["accuracy"])
    assert clf["macro_f1"] == pytest.approx(expected["f1"])
    assert len(clf["mteb"]["scores_per_experiment"]) == 3
    assert clf["mteb"]["scores_per_experiment"] == expected["scores_per_experiment"]
