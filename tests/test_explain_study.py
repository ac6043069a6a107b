"""The explanation study (`make explain-study`): ERASER's measures through `Classifier.results`,
LIME on the same words, plausibility against one-word labels, and its report."""

import json
import math

import numpy as np
import pytest
from conftest import write_tsv

from pipeline.config import load_config
from pipeline.explain import DEFAULT_METHOD, METHODS
from pipeline.studies import explain_study as study


def test_removed_words_become_spaces_and_kept_words_are_joined():
    text = "it's  not,bad"
    spans = [(0, 2), (2, 3), (3, 4), (6, 9), (9, 10), (10, 13)]
    assert study.without(text, spans, np.array([4, 1])) == "it s  not bad"
    assert study.without(text, spans, np.array([])) == text
    assert study.only(text, spans, np.array([5, 3])) == "not bad"


def test_one_word_labels_take_the_majority_and_leave_ties_out(tmp_path):
    path = write_tsv(
        tmp_path / "train.tsv",
        [("Good ", 1), ("good", 1), ("good", 0), ("bad", 0), ("meh", 0), ("meh", 1), ("a film", 1)],
    )
    assert study.one_word_labels(path) == {"good": 1, "bad": 0}


def test_plausibility_counts_signs_toward_positive_above_the_median():
    texts = ["good bad film", "bad"]
    spans = [[(0, 4), (5, 8), (9, 13)], [(0, 3)]]
    weights = [np.array([2.0, -0.1, 5.0]), np.array([3.0])]
    # the second text is predicted negative: its weight 3 pushes toward negative
    result = study.plausibility(texts, spans, weights, np.array([1.0, -1.0]), {"good": 1, "bad": 0})
    assert result == {"words": 1, "agreement": 1.0, "agreement_all": 1.0}  # |w| over 2: 3
    lexicon = {"good": 1, "bad": 0}
    flipped = study.plausibility(texts, spans, [-w for w in weights], np.array([1, -1]), lexicon)
    assert flipped["agreement"] == flipped["agreement_all"] == 0.0
    assert study.plausibility(texts, spans, weights, np.array([1, -1]), {})["words"] == 0


def test_the_study_scores_every_method_random_order_and_lime(tiny_model, tiny_config):
    glue = write_tsv(tiny_model.parent / "glue.tsv", [("good", 1), ("awful", 0), ("dull", 0)])
    report = study.explain_study(
        load_config(tiny_config), tiny_model, sentences=8, lime=3, samples=60, timed=2, glue=glue
    )

    assert set(report["methods"]) == {*METHODS, "random", "lime"}
    assert report["default"] == DEFAULT_METHOD and report["sentences"] == 8
    lime = report["methods"]["lime"]
    assert lime["sentences"] == 3 and lime["cost"]["calls"] == 60
    for name in METHODS:
        m = report["methods"][name]
        assert len(m["eval"]["comprehensiveness_at_k"]) == len(study.K_PERCENT)
        assert math.isfinite(m["lime_subset"]["sufficiency"])
        assert 1 < m["cost"]["calls"] <= 100 and m["cost"]["explain_over_embed"] > 0
        assert "plausibility" in m["eval"] and "plausibility" in m["lime_subset"]
        assert math.isfinite(m["lime_subset"]["comprehensiveness_minus_lime_se"])
    assert set(report["targets"]) >= {"comprehensiveness >= LIME's", "sufficiency <= LIME's"}
    written = study.REPORTS / f"{report['run']}.json"
    assert json.loads(written.read_text())["methods"].keys() == report["methods"].keys()
    markdown = written.with_suffix(".md").read_text()
    assert "| lime |" in markdown and f"default method: {DEFAULT_METHOD}" in markdown


def test_lime_is_kept_per_sentence_and_not_run_again_for_the_same_model(tiny_model, tiny_config):
    config = load_config(tiny_config)
    first = study.explain_study(config, tiny_model, sentences=4, lime=2, samples=40, timed=0)
    kept = json.loads((study.REPORTS / f"{config.run}-lime.json").read_text())
    assert len(kept["sentences"]) == 2 and all(k.startswith("40 0 ") for k in kept["sentences"])

    again = study.explain_study(config, tiny_model, sentences=4, lime=3, samples=40, timed=0)
    lime, before = again["methods"]["lime"], first["methods"]["lime"]
    kept = json.loads((study.REPORTS / f"{config.run}-lime.json").read_text())
    assert len(kept["sentences"]) == 3  # only the new sentence was explained
    seconds = [entry["seconds"] for entry in kept["sentences"].values()]
    assert lime["cost"]["ms_batched"] == pytest.approx(1e3 * sum(seconds) / 3, rel=1e-12)
    # the same two sentences' times, kept: a second LIME run would have taken other times
    assert before["cost"]["ms_batched"] == pytest.approx(1e3 * sum(seconds[:2]) / 2, rel=1e-12)
