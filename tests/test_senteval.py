"""SentEval's protocols, checked against plain loops written the way SentEval's code reads."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from pipeline.studies import senteval


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    y = (x[:, 0] + 0.8 * rng.normal(size=120) > 0).astype(np.int64)
    return x, y


def accuracy(c, x_fit, y_fit, x_score, y_score):
    return LogisticRegression(C=c, random_state=1111).fit(x_fit, y_fit).score(x_score, y_score)


def test_order_is_by_word_count_then_label_stably():
    texts = ["a b c", "a", "b", "c d", "e"]
    labels = np.array([0, 1, 0, 1, 1])
    assert senteval.senteval_order(texts, labels).tolist() == [2, 1, 4, 3, 0]


def test_inner_kfold_matches_sentevals_loops(xy):
    x, y = xy
    folds = StratifiedKFold(3, shuffle=True, random_state=1111)
    dev, tests = [], []
    for train, test in folds.split(x, y):
        scores = []
        for c in senteval.INNER_KFOLD_CS:
            inner = [
                accuracy(c, x[train][a], y[train][a], x[train][b], y[train][b])
                for a, b in folds.split(x[train], y[train])
            ]
            scores.append(round(100 * np.mean(inner), 2))
        dev.append(max(scores))
        best = senteval.INNER_KFOLD_CS[int(np.argmax(scores))]
        tests.append(round(100 * accuracy(best, x[train], y[train], x[test], y[test]), 2))
    result = senteval.inner_kfold(x, y, k=3)
    assert result.dev == round(np.mean(dev), 2)
    assert result.test == round(np.mean(tests), 2)
    assert result.test_std == round(np.std(tests), 2)
    assert len(result.cs) == 3


def test_kfold_then_test_matches_sentevals_loops(xy):
    x, y = xy
    folds = list(StratifiedKFold(4, shuffle=True, random_state=1111).split(x[:90], y[:90]))
    scores = [
        round(100 * np.mean([accuracy(c, x[a], y[a], x[b], y[b]) for a, b in folds]), 2)
        for c in senteval.KFOLD_CS
    ]
    best = senteval.KFOLD_CS[int(np.argmax(scores))]
    result = senteval.kfold(x[:90], y[:90], x[90:], y[90:], k=4)
    assert (result.dev, result.cs) == (max(scores), [best])
    assert result.test == round(100 * accuracy(best, x[:90], y[:90], x[90:], y[90:]), 2)
    assert senteval.kfold(x[:90], y[:90], None, None, k=4).test is None


def test_split_chooses_c_on_dev_and_scores_test(xy):
    x, y = xy
    scores = [
        round(100 * accuracy(c, x[:60], y[:60], x[60:90], y[60:90]), 2) for c in senteval.SPLIT_CS
    ]
    best = senteval.SPLIT_CS[int(np.argmax(scores))]
    result = senteval.split(x[:60], y[:60], x[60:90], y[60:90], x[90:], y[90:])
    assert (result.dev, result.cs) == (max(scores), [best])
    assert result.test == round(100 * accuracy(best, x[:60], y[:60], x[90:], y[90:]), 2)
