"""Word explanations (`pipeline.explain`): rows as `results` gives them plus each word's span and
weight, on both engines, for any Unicode, in one encode call, faithful beyond random order."""

import itertools
import math

import numpy as np
import pytest
import test_fuzz as fuzz
from conftest import NEGATIVE, POSITIVE, sentences
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import PipelineError, explain
from pipeline.classifier import Classifier
from pipeline.encoding.batching import embed
from pipeline.explain import DEFAULT_METHOD, METHODS, explain_rows
from pipeline.probe import LinearProbe

LONG = " ".join(POSITIVE * 3)  # over the tiny run's max_length (32 tokens): several windows


@pytest.fixture
def classifier(tiny_model) -> Classifier:
    return Classifier.load(tiny_model)


def assert_rows(classifier: Classifier, texts: list, rows: list[dict]) -> None:
    """Each row is `results`' row for its text plus words whose spans index the text."""
    assert len(rows) == len(texts)
    for text, row, want in zip(texts, rows, classifier.results(texts), strict=True):
        if "error" in want:
            assert row == want
            continue
        assert set(row) == {*want, "words"} and row["label"] == want["label"]
        for name, p in want["probabilities"].items():
            assert row["probabilities"][name] == pytest.approx(p, abs=1e-5)
        assert row["words"], text
        last = 0
        for word in row["words"]:
            assert text[word["start"] : word["end"]] == word["word"]
            assert last <= word["start"] < word["end"] <= len(text)
            assert math.isfinite(word["weight"])
            last = word["end"]


@settings(fuzz.FUZZ, max_examples=40)
@given(values=st.lists(fuzz.VALUE, max_size=8), method=st.sampled_from(METHODS))
def test_any_text_gets_its_row_and_spans_that_index_it(classifier, values, method):
    assert_rows(classifier, values, explain_rows(classifier, values, method))


@pytest.mark.parametrize("method", METHODS)
def test_bad_texts_keep_their_own_error_rows_and_touch_no_other(classifier, method):
    good = ["a good film , i loved it", "dull , cold and tedious", "fun"]
    mixed = [None, good[0], "", "\ud800", good[1], "\u200b", 3, good[2]]

    rows = explain_rows(classifier, mixed, method)

    assert_rows(classifier, mixed, rows)
    assert [row.get("error") for row in rows] == [
        "not a string", None, "empty text", rows[3]["error"], None, "empty text", "not a string",
        None,
    ]  # fmt: skip
    assert rows[3]["error"].startswith("not valid Unicode")
    alone = [explain_rows(classifier, [text], method)[0] for text in good]
    for row, want in zip([rows[1], rows[4], rows[7]], alone, strict=True):
        assert [w["word"] for w in row["words"]] == [w["word"] for w in want["words"]]
        np.testing.assert_allclose(
            [w["weight"] for w in row["words"]], [w["weight"] for w in want["words"]], atol=1e-4
        )


def test_words_are_the_tokenizers_subwords_grouped_and_punctuation_alone(classifier):
    text = "It's unbelievably dull,isn't it?"
    tokens = classifier.encoder.tokenize([text], offsets=True)
    assert len(tokens.ids[0]) - 2 > 10  # "unbelievably" is several WordPiece tokens

    (row,) = explain_rows(classifier, [text])

    assert [w["word"] for w in row["words"]] == [
        "It", "'", "s", "unbelievably", "dull", ",", "isn", "'", "t", "it", "?",
    ]  # fmt: skip


@pytest.mark.parametrize("method", METHODS)
def test_a_single_word_is_weighed_against_the_empty_input(classifier, method):
    (row,) = explain_rows(classifier, ["  wonderful "], method)
    (word,) = row["words"]
    assert (word["word"], word["start"], word["end"]) == ("wonderful", 2, 11)

    empty, _ = embed(classifier.encoder, classifier.encoder.tokenize([""]))
    full, _ = embed(classifier.encoder, classifier.encoder.tokenize(["wonderful"]))
    odds = explain.log_odds(classifier.probe, np.vstack([full, empty]))
    top = classifier.labels.index(row["label"])
    assert word["weight"] == pytest.approx(odds[0, top] - odds[1, top], abs=1e-4)


def test_a_long_text_is_explained_across_its_windows(classifier):
    (row,) = explain_rows(classifier, [LONG])
    tokens = classifier.encoder.tokenize([LONG], offsets=True)
    assert tokens.windows[0] > 1
    assert [w["word"] for w in row["words"]] == LONG.replace(",", " , ").split()
    assert_rows(classifier, [LONG], [row])


@pytest.mark.parametrize("method", METHODS)
def test_one_embed_call_per_explain_call(classifier, monkeypatch, method):
    calls = []

    def counted(*args, **kwargs):
        calls.append(len(args[1]))
        return embed(*args, **kwargs)

    monkeypatch.setattr(explain, "embed", counted)
    texts = [*sentences(12), "", LONG, "fun"]
    explain_rows(classifier, texts, method)
    plans = explain.plan_variants(classifier, texts, method).plans
    assert calls == [sum(len(plan.keep) for plan in plans)]

    calls.clear()
    assert explain_rows(classifier, ["", None], method)[0]["error"] == "empty text"
    assert calls == []  # nothing to encode: no call


def test_shap_weights_add_up_and_are_exact_shapley_values_when_all_coalitions_fit():
    rng = np.random.default_rng(0)
    for n in (2, 3):
        keep, kernel = explain.coalitions(n, "shap", rng)
        assert len(keep) == 2**n  # every coalition
        game = {(): 0.0}
        for size in range(1, n + 1):
            for kept in itertools.combinations(range(n), size):
                game[kept] = rng.normal()
        scores = np.array([[game[tuple(np.flatnonzero(row))]] for row in keep])
        plan = explain.Plan(np.zeros((n, 2)), [], keep, "shap", kernel)
        phi = explain.attribute(plan, scores)[:, 0]
        want = [shapley(game, n, i) for i in range(n)]
        np.testing.assert_allclose(phi, want, atol=1e-5)


def test_banzhaf_weights_are_exact_banzhaf_values_when_all_subsets_fit():
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 4):
        keep, fit = explain.coalitions(n, "banzhaf", rng)
        assert len(keep) == 2**n and keep[0].all()  # every subset, the text first
        game = {kept: rng.normal() for kept in map(tuple, map(np.flatnonzero, keep))}
        scores = np.array([[game[tuple(np.flatnonzero(row))]] for row in keep])
        phi = explain.attribute(explain.Plan(np.zeros((n, 2)), [], keep, "banzhaf", fit), scores)
        np.testing.assert_allclose(phi[:, 0], [banzhaf(game, n, i) for i in range(n)], atol=1e-5)


def banzhaf(game: dict, n: int, i: int) -> float:
    """Player i's Banzhaf value in `game`: its mean gain over every subset of the others."""
    others = [j for j in range(n) if j != i]
    gains = [
        game[tuple(sorted((*s, i)))] - game[s]
        for size in range(n)
        for s in itertools.combinations(others, size)
    ]
    return float(np.mean(gains))


@pytest.mark.parametrize("method", ["banzhaf", "shap"])
def test_an_additive_game_is_recovered_from_few_variants(method):
    rng = np.random.default_rng(1)
    # shap's paired coalitions (a set and its complement) count once here: up to ~49 words
    for n in (1, 2, 5, 12, 40, *([80] if method == "banzhaf" else [])):
        keep, fit = explain.coalitions(n, method, rng)
        assert len(keep) <= max(explain.MAX_VARIANTS, n + 1)
        assert len(np.unique(keep, axis=0)) == len(keep) and keep[0].all()
        effect = rng.normal(size=n)
        scores = (keep @ effect + 0.3)[:, None]
        phi = explain.attribute(explain.Plan(np.zeros((n, 2)), [], keep, method, fit), scores)
        np.testing.assert_allclose(phi[:, 0], effect, atol=1e-3)
    assert len(explain.coalitions(20, method, rng)[0]) <= 4 * 20  # the 2n to 4n


def shapley(game: dict, n: int, i: int) -> float:
    """Player i's Shapley value in `game` (coalition tuple -> value), by its definition."""
    others = [j for j in range(n) if j != i]
    value = 0.0
    for size in range(n):
        for s in itertools.combinations(others, size):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            value += weight * (game[tuple(sorted((*s, i)))] - game[s])
    return value


def test_more_than_two_classes_carry_a_weight_per_class(classifier):
    rng = np.random.default_rng(0)
    dim = classifier.encoder.dim
    three = Classifier(
        classifier.encoder,
        LinearProbe(rng.normal(size=(3, dim)), rng.normal(size=3)),
        {**classifier.meta, "labels": ["negative", "neutral", "positive"]},
        classifier.engine,
    )
    for method in METHODS:
        rows = explain_rows(three, ["a good film , i loved it", ""], method)
        assert_rows(three, ["a good film , i loved it", ""], rows)
        for word in rows[0]["words"]:
            assert set(word["weights"]) == {"negative", "neutral", "positive"}
            assert word["weight"] == word["weights"][rows[0]["label"]]


def test_an_unknown_method_is_refused(classifier):
    with pytest.raises(PipelineError, match="unknown explanation method 'lime'"):
        explain_rows(classifier, ["a good film"], "lime")
    with pytest.raises(TypeError, match="list of texts"):
        explain_rows(classifier, "a good film")


def test_the_default_is_more_comprehensive_than_random_order(classifier):
    from pipeline.studies.explain_study import aopc

    texts = [f"{p} but {n}" for p, n in zip(POSITIVE, NEGATIVE, strict=True)] + sentences(20)
    rows = explain_rows(classifier, texts, DEFAULT_METHOD)
    spans = [[(w["start"], w["end"]) for w in row["words"]] for row in rows]
    weights = [np.array([w["weight"] for w in row["words"]]) for row in rows]
    top = np.array([classifier.labels.index(row["label"]) for row in rows])
    p_text = np.array([row["probability"] for row in rows])
    p_empty = classifier.predict_proba(["."])[0]  # never used: no text loses every word here

    def comprehensiveness(w: list[np.ndarray]) -> float:
        return float(
            aopc(classifier, texts, spans, w, top, p_text, p_empty)["comprehensiveness"].mean()
        )

    rng = np.random.default_rng(0)
    floor = np.mean(
        [
            comprehensiveness([rng.permutation(len(s)).astype(float) for s in spans])
            for _ in range(5)
        ]
    )
    assert comprehensiveness(weights) > 2 * floor + 0.01  # measured: 0.38 against 0.11


def test_both_engines_give_the_same_words_and_close_weights(tiny_model):
    from pipeline.export import export

    export(tiny_model)
    onnx, torch = Classifier.load(tiny_model, "onnx"), Classifier.load(tiny_model, "torch")
    assert onnx.engine == "onnx"
    texts = [*sentences(10), LONG, "", "it's unbelievably dull"]
    for method in METHODS:
        got, want = explain_rows(onnx, texts, method), explain_rows(torch, texts, method)
        for a, b in zip(got, want, strict=True):
            assert a.get("error") == b.get("error") and a.get("label") == b.get("label")
            if "words" in b:
                assert [(w["word"], w["start"]) for w in a["words"]] == [
                    (w["word"], w["start"]) for w in b["words"]
                ]
                np.testing.assert_allclose(
                    [w["weight"] for w in a["words"]], [w["weight"] for w in b["words"]], atol=1e-3
                )
