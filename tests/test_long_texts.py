"""The long-text study: its documents, pooling ways, scoring and report; the bench's long text."""

import json

import numpy as np
import pytest
from conftest import NEGATIVE, POSITIVE, write_tsv

from pipeline.bench.long_text import long_text, long_text_cost, long_text_markdown
from pipeline.config import EncoderConfig, load_config
from pipeline.data.splits import load_splits
from pipeline.encoding.batching import embed
from pipeline.encoding.encoder import load_encoder
from pipeline.studies.long_documents import (
    BUCKETS,
    SENTENCES,
    Documents,
    bucket,
    documents,
    first_window_disagrees,
    held_out,
    joined,
)
from pipeline.studies.long_texts import long_text_study, pooled, reading, window_vectors


@pytest.fixture(scope="module")
def encoder(tiny_encoder):
    return load_encoder(EncoderConfig(name=str(tiny_encoder), pooling="mean", max_length=16))


def pool() -> tuple[list[str], np.ndarray, np.ndarray]:
    """200 sentences, labels alternating: 100 of 2 words, then 100 of 10."""
    texts = [" ".join(f"w{i}x{k}" for k in range(2 + 8 * (i >= 100))) for i in range(200)]
    return texts, np.arange(200) % 2, np.array([len(t.split()) for t in texts])


def by_words(texts: list[str]) -> np.ndarray:
    """A stand-in window count: one for 20 words, then one more per 25."""
    return np.array([1 + max(0, len(t.split()) - 20) // 25 for t in texts])


def test_buckets_are_windows_1_2_3to4_and_over_4():
    assert [bucket(w) for w in range(1, 8)] == ["1", "2", "3-4", "3-4", ">4", ">4", ">4"]


def test_joined_sentences_keep_their_spans():
    text, spans = joined(["a good film", "bad !", "so so"])
    assert text == "a good film . bad ! so so ."
    assert [text[a:b] for a, b in spans] == ["a good film .", "bad !", "so so ."]


def test_documents_are_seeded_labeled_by_their_strict_majority_and_fill_the_buckets():
    texts, labels, lengths = pool()
    docs = documents(texts, labels, lengths, by_words, per_bucket=6, seed=3, minority_first=0.5)
    again = documents(texts, labels, lengths, by_words, per_bucket=6, seed=3, minority_first=0.5)
    other = documents(texts, labels, lengths, by_words, per_bucket=6, seed=4, minority_first=0.5)
    assert docs.texts == again.texts and docs.texts != other.texts
    assert sorted(bucket(w) for w in by_words(docs.texts)) == sorted(BUCKETS * 6)
    for text, label, spans, ys in zip(
        docs.texts, docs.labels, docs.spans, docs.sentence_labels, strict=True
    ):
        assert SENTENCES[0] <= len(ys) <= SENTENCES[1] == 16
        counts = np.bincount(ys, minlength=2)
        assert counts[label] > counts[1 - label] >= 1  # a strict majority, never a tie
        assert all(text[a:b].rstrip(" .") in texts for a, b in spans)
    firsts = docs.minority_first
    assert 0 < firsts.sum() < len(firsts)
    for ys, label in zip(
        [ys for ys, f in zip(docs.sentence_labels, firsts, strict=True) if f],
        docs.labels[firsts],
        strict=True,
    ):
        minority = int((ys != label).sum())
        assert (ys[:minority] != label).all() and (ys[minority:] == label).all()


def test_every_document_opens_with_its_minority_when_asked():
    texts, labels, lengths = pool()
    docs = documents(texts, labels, lengths, by_words, per_bucket=3, seed=0, minority_first=1.0)
    assert docs.minority_first.all()
    assert all(ys[0] != label for ys, label in zip(docs.sentence_labels, docs.labels, strict=True))


def test_held_out_sentences_are_never_training_ones(tmp_path, tiny_data):
    config = tmp_path / "holdout.yaml"
    config.write_text(
        f"data:\n  dir: {tiny_data}\n  protocol: holdout\n  limit: 30\n", encoding="utf-8"
    )
    config = load_config(config)
    splits = load_splits(config.data)
    texts, labels, sources = held_out(config, splits)
    assert not set(texts) & set(splits["train"].texts)
    assert len(texts) == len(set(texts)) == len(splits["eval"]) + 10 + 20  # eval, past 30, dev
    assert len(sources) == 3 and set(labels.tolist()) == {0, 1}


def test_the_pooling_ways_are_the_engines_own(encoder):
    texts = [" ".join(POSITIVE), "a good film", " ".join(NEGATIVE + POSITIVE)]
    tokens = encoder.tokenize(texts)
    assert tokens.windows.tolist()[1] == 1 and min(tokens.windows[[0, 2]]) > 2
    ways = pooled(window_vectors(encoder, tokens), tokens)
    chunk = embed(encoder, texts)[0]
    truncate = embed(reading(encoder, "truncate"), texts)[0]
    np.testing.assert_allclose(ways["chunk"], chunk, atol=1e-5)
    np.testing.assert_allclose(ways["truncate"], truncate, atol=1e-5)
    for way in ways.values():  # a text of one window is that window, whichever way
        np.testing.assert_allclose(way[1], chunk[1], atol=1e-5)
    assert (ways["max"] >= ways["chunk"] - 1e-6).all()
    last = tokens.starts + tokens.windows - 1
    rows = window_vectors(encoder, tokens)
    np.testing.assert_allclose(ways["first+last"][2], (rows[last[1] + 1] + rows[last[2]]) / 2)


def test_the_first_window_disagrees_when_its_minority_fills_it(encoder):
    minority, majority = ["awful , dull and bad"] * 3, ["a good film"] * 9
    text, spans = joined(minority + majority)
    shuffled, shuffled_spans = joined(majority[:5] + minority + majority[5:])
    docs = Documents(
        [text, shuffled],
        np.array([1, 1]),
        [spans, shuffled_spans],
        [np.array([0] * 3 + [1] * 9), np.array([1] * 5 + [0] * 3 + [1] * 4)],
        np.array([True, False]),
    )
    tokens = encoder.tokenize(docs.texts, offsets=True)
    assert tokens.windows.min() > 1
    assert first_window_disagrees(docs, tokens).tolist() == [True, False]


def test_the_study_scores_each_bucket_and_writes_its_report(tmp_path, tiny_encoder, workdir):
    folder = tmp_path / "sentences"
    folder.mkdir()
    train = [(s, 1) for s in POSITIVE] + [(s, 0) for s in NEGATIVE]
    write_tsv(folder / "train.tsv", train + [(s + " indeed", y) for s, y in train])
    ends = (" !", " ?", " , as good as it ever gets , and then more")
    write_tsv(folder / "dev.tsv", [(s + end, y) for end in ends for s, y in train])
    config = tmp_path / "long.yaml"
    config.write_text(
        f"run: long\ndata:\n  dir: {folder}\nencoder:\n  name: {tiny_encoder}\n  pooling: mean\n"
        "  max_length: 48\ntrain:\n  cs: [1.0]\n  cv: 2\n",
        encoding="utf-8",
    )
    report = long_text_study(load_config(config), per_bucket=4, seed=1, repeats=1)
    buckets = report["buckets"]
    assert [b["documents"] for b in buckets.values()] == [4, 4, 4, 4, 16]
    assert buckets["1"]["accuracy"]["chunk"] == buckets["1"]["accuracy"]["truncate"]
    assert buckets["1"]["first_window_disagrees"] == 0
    assert buckets["1"]["right_in_one_only"] == {"chunk": 0, "truncate": 0}
    time = report["time"]
    assert time["chunk"]["windows"] > time["truncate"]["windows"] == 16
    assert time["chunk"]["tokens_read"] > time["truncate"]["tokens_read"]
    assert report["stride"] == 11 and report["sentences"]["held_out"] == 60
    saved = json.loads((workdir / "reports/long/long.json").read_text())
    assert saved["buckets"] == json.loads(json.dumps(buckets))
    md = (workdir / "reports/long/long.md").read_text()
    assert "| >4 | 4 |" in md and "chunk costs" in md and "Target" in md


def test_the_bench_long_text_is_cut_at_its_token_count_and_timed_both_ways(encoder):
    phrases = [s for _ in range(20) for s in POSITIVE + NEGATIVE]
    text = long_text(encoder, phrases, tokens=200)
    assert 200 <= encoder.tokenize([text]).counts[0] <= 204
    cost = long_text_cost(encoder, text, repeats=2)
    assert cost["windows"] == encoder.tokenize([text]).windows[0] > 1
    assert cost["ratio"] == cost["median_s"]["embed"] / cost["median_s"]["one batch"]
    assert len(cost["runs_s"]["embed"]) == 2
    table = long_text_markdown({"encoders": {"tiny": {"long_text": cost}}})
    assert "| tiny | " in table and "1.2x" in table
