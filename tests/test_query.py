"""Query strategies on small arrays: what each picks, that no pick repeats, and parity with
small-text's least-confidence, margin and entropy."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from pipeline import PipelineError, query


@pytest.fixture
def blobs():
    """Four tight, far-apart groups of 30 points in 8 dimensions, and a label per group pair."""
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:4] * 10
    x = np.vstack([c + rng.normal(scale=0.3, size=(30, 8)) for c in centres]).astype(np.float32)
    group = np.repeat(np.arange(4), 30)
    return x, group, group % 2


def proba_of(x, y, rows, c=0.3):
    return LogisticRegression(C=c).fit(x[rows], y[rows]).predict_proba(x)


def test_uncertainty_scores_and_their_order():
    proba = np.array([[0.9, 0.1], [0.55, 0.45], [0.5, 0.5], [0.2, 0.8]])
    assert query.informativeness(proba, "least-confidence") == pytest.approx([0.1, 0.45, 0.5, 0.2])
    assert query.informativeness(proba, "margin") == pytest.approx([0.2, 0.9, 1.0, 0.4])
    entropy = query.informativeness(proba, "entropy")
    assert entropy[2] == pytest.approx(np.log(2)) and entropy.argsort().tolist() == [0, 3, 1, 2]
    taken = np.array([False, False, True, False])
    picks = query.choose("margin", np.zeros((4, 2)), 2, taken, proba)
    assert picks.rows.tolist() == [1, 3] and picks.scores == pytest.approx([0.9, 0.4])


@pytest.mark.parametrize("strategy", query.STRATEGIES)
def test_no_strategy_ever_picks_a_taken_or_picked_text_twice(blobs, strategy):
    x, _, y = blobs
    taken = np.zeros(len(x), dtype=bool)
    taken[[0, 45, 70, 100]] = True  # labeled: both classes
    seen = set(np.flatnonzero(taken))
    while not taken.all():
        rows = np.flatnonzero(taken)
        proba = proba_of(x, y, rows)
        picks = query.choose(strategy, x, 7, taken, proba, seed=len(seen))
        assert len(picks.rows) == min(7, (~taken).sum()) == len(picks.scores)
        assert not taken[picks.rows].any() and len(set(picks.rows.tolist())) == len(picks.rows)
        assert picks.strategy == strategy
        seen |= set(picks.rows.tolist())
        taken[picks.rows] = True
    assert len(seen) == len(x)


def test_the_diversity_start_takes_one_text_near_each_groups_centre(blobs):
    x, group, _ = blobs
    taken = np.zeros(len(x), dtype=bool)
    picks = query.choose("kmeans", x, 4, taken, seed=1)
    assert sorted(group[picks.rows]) == [0, 1, 2, 3]
    assert picks.scores.sum() == pytest.approx(1.0)  # the groups share the whole pool
    taken[group == 2] = True  # group 2 is labeled: the next three come from the others
    again = query.choose("kmeans", x, 3, taken, seed=1)
    assert sorted(group[again.rows]) == [0, 1, 3]


def test_badge_starts_with_the_largest_gradient_and_spreads_over_groups(blobs):
    x, group, y = blobs
    taken = np.zeros(len(x), dtype=bool)
    taken[[0, 31]] = True
    proba = proba_of(x, y, np.flatnonzero(taken), c=0.01)
    picks = query.choose("badge", x, 4, taken, proba, seed=0)
    norms = query.priority("badge", proba, x)
    assert picks.rows[0] == np.flatnonzero(~taken)[np.argmax(norms[~taken])]
    assert picks.scores == pytest.approx(norms[picks.rows], rel=1e-5)
    assert len(set(group[picks.rows])) >= 3


def test_cluster_margin_picks_from_the_least_certain_and_spreads_them(blobs):
    x, _, y = blobs
    taken = np.zeros(len(x), dtype=bool)
    taken[[0, 31, 62, 93]] = True
    proba = proba_of(x, y, np.flatnonzero(taken))
    picks = query.choose("cluster-margin", x, 3, taken, proba, seed=0)
    shortlist = query.top(query.informativeness(proba, "margin"), np.flatnonzero(~taken), 30)
    assert set(picks.rows) <= set(shortlist)
    assert list(picks.scores) == sorted(picks.scores, reverse=True)


def test_cold_start_lasts_until_every_class_has_a_few_labels():
    few = query.FEW_PER_CLASS
    assert query.in_cold_start(np.array([], dtype=int), 2)
    assert query.in_cold_start(np.array([0] * few + [1] * (few - 1)), 2)
    assert not query.in_cold_start(np.array([0] * few + [1] * few), 2)
    # a rare class does not hold the start forever once two classes are seen
    assert not query.in_cold_start(np.array([0] * (4 * few * 3 - 1) + [1]), 3)
    assert query.in_cold_start(np.array([0] * 100), 2)


def test_strategies_that_need_a_classifier_say_so_and_unknown_ones_are_refused():
    with pytest.raises(PipelineError, match="needs a classifier"):
        query.choose("badge", np.zeros((3, 2)), 1, np.zeros(3, dtype=bool))
    with pytest.raises(PipelineError, match="choose one of random"):
        query.check_strategy("magrin")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # small-text's own
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize(
    "ours, theirs", [("least-confidence", "LeastConfidence"), ("margin", "BreakingTies"),
                     ("entropy", "PredictionEntropy")],
)  # fmt: skip
def test_picks_equal_small_texts_on_the_same_arrays_and_classifier(k, ours, theirs):
    small_text = pytest.importorskip("small_text")
    rng = np.random.default_rng(k)
    y = np.repeat(np.arange(k), 300 // k + 1)[:300]
    x = rng.normal(size=(300, 6)) + np.eye(6)[y]
    labeled = rng.choice(300, 30, replace=False)
    unlabeled = np.setdiff1d(np.arange(300), labeled)
    clf = small_text.SklearnClassifier(LogisticRegression(C=0.3), num_classes=k)
    clf.fit(small_text.SklearnDataset(x[labeled], y[labeled], target_labels=np.arange(k)))
    strategy = getattr(small_text, theirs)()
    expected = strategy.query(
        clf,
        small_text.SklearnDataset(x, y, target_labels=np.arange(k)),
        unlabeled,
        labeled,
        y[labeled],
        n=20,
    )
    taken = np.zeros(300, dtype=bool)
    taken[labeled] = True
    picks = query.choose(
        ours,
        x,
        20,
        taken,
        clf.predict_proba(small_text.SklearnDataset(x, y, target_labels=np.arange(k))),
    )
    assert sorted(picks.rows.tolist()) == sorted(expected.tolist())
