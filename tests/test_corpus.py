import json

import pandas as pd
import pytest
from conftest import NEGATIVE, POSITIVE, run_cli

from pipeline import PipelineError
from pipeline.data.splits import read_split
from pipeline.scale.corpus import CONNECTORS, write_corpus


@pytest.fixture
def source(tiny_data):
    return tiny_data / "train.tsv"


def test_same_seed_same_bytes_other_seed_other_bytes(source, tmp_path):
    a = write_corpus(tmp_path / "a.tsv", 500, 0, source).read_bytes()
    b = write_corpus(tmp_path / "b.tsv", 500, 0, source).read_bytes()
    c = write_corpus(tmp_path / "c.tsv", 500, 1, source).read_bytes()
    assert a == b
    assert a != c


def test_a_smaller_corpus_is_a_prefix_of_a_larger_one(source, tmp_path):
    small = write_corpus(tmp_path / "small.txt", 66_000, 0, source).read_text().splitlines()
    large = write_corpus(tmp_path / "large.txt", 140_000, 0, source).read_text().splitlines()
    assert len(large) == 140_000  # the small one ends in the second chunk, the large in the third
    assert small == large[:66_000]


def test_each_sentence_is_made_of_phrases_with_its_label(source, tmp_path):
    split = read_split(write_corpus(tmp_path / "corpus.tsv", 2000, 0, source))
    assert len(split) == 2000
    phrases = {
        k: set(group) | {s + " indeed" for s in group}
        for k, group in enumerate([NEGATIVE, POSITIVE])
    }
    pairs = 0
    for text, label in zip(split.texts, split.labels.tolist(), strict=True):
        if text not in phrases[label]:
            pairs += 1
            assert any(
                text.startswith(a + c) and text[len(a + c) :] in phrases[label]
                for a in phrases[label]
                for c in CONNECTORS
            ), text
    assert 200 < pairs < 600  # about one in five


def test_formats_hold_the_same_sentences(source, tmp_path):
    texts = write_corpus(tmp_path / "c.txt", 300, 0, source).read_text().splitlines()
    tsv = read_split(write_corpus(tmp_path / "c.tsv", 300, 0, source))
    jsonl = [json.loads(line) for line in write_corpus(tmp_path / "c.jsonl", 300, 0, source).open()]
    parquet = pd.read_parquet(write_corpus(tmp_path / "c.parquet", 300, 0, source))
    assert tsv.texts == texts
    assert [r["text"] for r in jsonl] == texts
    assert parquet["text"].tolist() == texts
    assert parquet["id"].tolist() == [r["id"] for r in jsonl] == list(range(300))
    assert parquet["label"].tolist() == [r["label"] for r in jsonl] == tsv.labels.tolist()
    made = json.loads((tmp_path / "c.tsv.json").read_text())
    assert made["n"] == 300
    assert made["seed"] == 0


def test_bad_arguments_are_one_line_errors(source, tmp_path):
    with pytest.raises(PipelineError, match="unknown corpus format"):
        write_corpus(tmp_path / "c.csv", 10, 0, source)
    with pytest.raises(PipelineError, match="at least 1"):
        write_corpus(tmp_path / "c.txt", 0, 0, source)
    result = run_cli(
        "-m", "pipeline.scale.corpus", "--n", "5", "--output", "c.txt", "--source", "nope.tsv",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: source phrases not found: nope.tsv (pass --source FILE)"
    ]
    assert not (tmp_path / "c.txt").exists()


def test_the_source_is_an_explicit_argument(tmp_path):
    result = run_cli("-m", "pipeline.scale.corpus", "--n", "5", "--output", "c.txt", cwd=tmp_path)
    assert result.returncode == 2
    assert "--source" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "c.txt").exists()
