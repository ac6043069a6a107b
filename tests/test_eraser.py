"""ERASER's measures and plausibility (`pipeline.studies.eraser`): the texts they score and the
signs they count."""

import numpy as np
from conftest import write_tsv

from pipeline.studies import eraser


def test_removed_words_become_spaces_and_kept_words_are_joined():
    text = "it's  not,bad"
    spans = [(0, 2), (2, 3), (3, 4), (6, 9), (9, 10), (10, 13)]
    assert eraser.without(text, spans, np.array([4, 1])) == "it s  not bad"
    assert eraser.without(text, spans, np.array([])) == text
    assert eraser.only(text, spans, np.array([5, 3])) == "not bad"


def test_one_word_labels_take_the_majority_and_leave_ties_out(tmp_path):
    path = write_tsv(
        tmp_path / "train.tsv",
        [("Good ", 1), ("good", 1), ("good", 0), ("bad", 0), ("meh", 0), ("meh", 1), ("a film", 1)],
    )
    assert eraser.one_word_labels(path) == {"good": 1, "bad": 0}


def test_plausibility_counts_signs_toward_positive_above_the_median():
    texts = ["good bad film", "bad"]
    spans = [[(0, 4), (5, 8), (9, 13)], [(0, 3)]]
    weights = [np.array([2.0, -0.1, 5.0]), np.array([3.0])]
    # the second text is predicted negative: its weight 3 pushes toward negative
    result = eraser.plausibility(
        texts, spans, weights, np.array([1.0, -1.0]), {"good": 1, "bad": 0}
    )
    assert result == {"words": 1, "agreement": 1.0, "agreement_all": 1.0}  # |w| over 2: 3
    lexicon = {"good": 1, "bad": 0}
    flipped = eraser.plausibility(texts, spans, [-w for w in weights], np.array([1, -1]), lexicon)
    assert flipped["agreement"] == flipped["agreement_all"] == 0.0
    assert eraser.plausibility(texts, spans, weights, np.array([1, -1]), {})["words"] == 0
