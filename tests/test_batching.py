"""The one encode path: one tokenization (ids, counts, offsets), the plan, both engines on it."""

import itertools

import numpy as np
import pytest

from pipeline.classifier import Classifier
from pipeline.config import EncoderConfig
from pipeline.encoding.batching import embed, token_budget_batches
from pipeline.encoding.encoder import load_encoder

TEXT = "Héllo, wörld!  A naïve café-goer's 👍 review…"


@pytest.fixture(scope="module")
def encoder(tiny_encoder):
    return load_encoder(EncoderConfig(name=str(tiny_encoder), max_length=32))


def test_offsets_index_the_text_the_user_typed(encoder):
    tokens = encoder.tokenize([TEXT, "fine"], offsets=True)
    spans = tokens.offsets[0]
    words = spans[spans[:, 1] > spans[:, 0]]  # special tokens have empty spans
    assert len(words) == tokens.counts[0] == len(tokens.ids[0]) - 2
    assert (np.diff(words[:, 0]) >= 0).all() and words[:, 1].max() <= len(TEXT)
    covered = np.zeros(len(TEXT), dtype=bool)
    for start, end in words:
        covered[start:end] = True
    assert all(covered[i] for i, char in enumerate(TEXT) if not char.isspace())
    assert TEXT[slice(*words[0])] == "Héllo" and TEXT[slice(*words[1])] == ","
    assert tokens.offsets[1][1:-1].tolist() == [[0, 4]]
    assert tokens.words[0][0] == tokens.words[0][-1] == -1  # [CLS], [SEP]
    assert tokens.words[0][1:4].tolist() == [0, 1, 2]  # "Héllo", ",", "wörld": punctuation alone


def test_truncate_reads_the_first_window_and_says_so(tiny_encoder):
    encoder = load_encoder(
        EncoderConfig(name=str(tiny_encoder), max_length=32, long_texts="truncate")
    )
    tokens = encoder.tokenize([" ".join(["word"] * 50), "fine", ""])
    assert tokens.counts.tolist() == [30, 1, 0]  # 32 with [CLS] and [SEP]
    assert tokens.truncated.tolist() == [True, False, False]
    assert tokens.windows.tolist() == [1, 1, 1]
    assert [len(ids) for ids in tokens.ids] == [32, 3, 2]
    assert tokens.offsets is None and tokens.words is None  # kept only when asked for


def test_chunk_reads_every_token_in_overlapping_windows(encoder):
    words = [f"w{i}" for i in range(50)]  # "w", "##0", ...: two tokens a word
    tokens = encoder.tokenize([" ".join(words), "fine"], offsets=True)
    assert tokens.counts.tolist() == [100, 1] and not tokens.truncated.any()
    stride = (32 - 2) // 4  # the default: a quarter of a window
    assert tokens.windows.tolist() == [1 + -(-(100 - 30) // (30 - stride)), 1]
    rows = tokens.ids[: tokens.windows[0]]
    assert all(len(row) <= 32 for row in rows)
    for first, second in itertools.pairwise(rows):  # consecutive windows share `stride`
        assert first[-1 - stride : -1].tolist() == second[1 : 1 + stride].tolist()
    read = {tuple(span) for row in tokens.offsets[: tokens.windows[0]] for span in row[1:-1]}
    assert len(read) == 100  # every token's span, the shared ones once


def test_a_chunked_text_is_its_windows_weighted_mean(encoder):
    long = " ".join(f"w{i}" for i in range(50))
    tokens = encoder.tokenize([long, "fine", long])
    rows = [encoder.run([ids])[0] for ids in tokens.ids]
    n, weights = tokens.windows[0], tokens.weights[: tokens.windows[0]]
    want = (weights[:, None] * np.stack(rows[:n])).sum(0) / weights.sum()
    vectors, truncated = embed(encoder, [long, "fine", long])
    assert truncated == 0
    np.testing.assert_allclose(vectors[0], want, atol=1e-5)
    np.testing.assert_allclose(vectors[2], want, atol=1e-5)
    np.testing.assert_allclose(vectors[1], rows[n], atol=1e-5)


def test_short_texts_get_the_same_vectors_either_way(tiny_encoder):
    texts = ["a good film", "bad", "an ok film , i guess", " ".join(["long"] * 29)]  # 31 tokens
    chunk = load_encoder(EncoderConfig(name=str(tiny_encoder), max_length=32))
    truncate = load_encoder(
        EncoderConfig(name=str(tiny_encoder), max_length=32, long_texts="truncate")
    )
    np.testing.assert_array_equal(embed(chunk, texts)[0], embed(truncate, texts)[0])


def test_a_window_with_a_chunked_text_resumes_whole(encoder):
    texts = ["a good film", " ".join(f"w{i}" for i in range(50)), "bad"]
    calls = []
    full, _ = embed(encoder, texts, on_batch=lambda *c: calls.append(c))
    assert calls == [(calls[0][0], calls[0][0])]  # one report, at the end of the window
    out = np.zeros_like(full)
    embed(encoder, texts, out=out, skip_batches=calls[0][0])
    assert not out.any()  # nothing left to do
    embed(encoder, texts, out=out, skip_batches=calls[0][0] - 1)
    np.testing.assert_array_equal(out, full)


def test_encoding_tokens_equals_encoding_texts(encoder):
    texts = ["a good film", "bad", " ".join(["long"] * 40), "an ok film , i guess"]
    np.testing.assert_array_equal(
        embed(encoder, encoder.tokenize(texts))[0], embed(encoder, texts)[0]
    )


def test_the_classifier_tokenizes_each_text_once(tiny_model, monkeypatch):
    classifier = Classifier.load(tiny_model, "torch")
    calls = []
    tokenize = classifier.encoder.tokenize
    monkeypatch.setattr(
        classifier.encoder,
        "tokenize",
        lambda texts, *a: calls.append(list(texts)) or tokenize(texts, *a),
    )
    rows = classifier.results(["a good film", "", "\u200b", "awful", "\ud800"])
    assert [r.get("error") for r in rows] == [
        None,
        "empty text",
        "empty text",
        None,
        rows[4]["error"],
    ]
    assert calls == [["a good film", "awful"]]  # the cheap checks first, then one call


def test_token_budget_batches_cover_everything_within_budget():
    lengths = np.array([5, 40, 12, 12, 3, 7, 40, 1])
    order = np.argsort(-lengths, kind="stable")
    batches = token_budget_batches(order, lengths, budget=48)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 48
        padded = len(batch) * lengths[batch].max()
        assert padded - lengths[batch].sum() <= 0.25 * padded


def test_full_batches_have_one_length_and_small_sets_few_batches():
    rng = np.random.default_rng(0)
    many = rng.integers(5, 30, size=5000)  # a dataset: many sentences of every length
    order = np.argsort(-many, kind="stable")
    batches = token_budget_batches(order, many, budget=512)
    mixed = [b for b in batches if len(set(many[b])) > 1]
    assert len(mixed) <= len(set(many.tolist()))  # at most one mixed batch per length
    few = np.repeat(np.arange(32, 10, -1), [11] + [1] * 21)  # a request: 32 sentences, 22 lengths
    order = np.argsort(-few, kind="stable")
    assert len(token_budget_batches(order, few, budget=4096)) <= 4
