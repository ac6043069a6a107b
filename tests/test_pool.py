"""Pools: any reader format, encoded once and cached like a split; labels files read back."""

import csv
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import sentences

from pipeline import PipelineError
from pipeline.config import load_config
from pipeline.pool import PENDING, SKIPPED, encode_texts, load_pool, read_answers


@pytest.fixture
def config(tiny_config, workdir):
    return load_config(tiny_config)


def write_pool(folder, name, texts, labels=None):
    """The texts (and labels) as a pool file of the suffix of `name`."""
    path = folder / name
    columns = {"sentence": texts} | ({"label": labels} if labels else {})
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    if path.suffix == ".txt":
        path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif path.suffix == ".parquet":
        pq.write_table(pa.table(columns), path)
    else:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            tsv = path.suffix == ".tsv"
            writer = csv.DictWriter(
                handle, list(columns), delimiter="\t" if tsv else ",", lineterminator="\n",
                quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL,
            )  # fmt: skip
            writer.writeheader()
            writer.writerows(rows)
    return path


@pytest.mark.parametrize("name", ["pool.txt", "pool.tsv", "pool.csv", "pool.jsonl", "pool.parquet"])
def test_every_reader_format_is_a_pool_encoded_like_the_features(config, workdir, name):
    texts = sentences(12)
    pool = load_pool(write_pool(workdir, name, texts), config, progress=False)
    assert pool.texts == texts and pool.x.shape == (12, 32) and pool.labels is None
    assert np.allclose(pool.x, encode_texts(config, texts), atol=1e-5)
    assert pool.row(texts[3]) == 3 and pool.row("not in the pool") == -1


def test_a_pool_is_encoded_once_and_found_again_by_its_stamps(config, workdir, caplog):
    path = write_pool(workdir, "pool.txt", sentences(10))
    first = load_pool(path, config, progress=False)
    created = json.loads((first.folder / "meta.json").read_text())["created"]
    caplog.set_level("INFO")
    again = load_pool(path, config, progress=False)
    assert again.folder == first.folder and "cache hit" in caplog.text
    assert json.loads((again.folder / "meta.json").read_text())["created"] == created
    same = load_pool(write_pool(workdir, "same.txt", sentences(10)), config, progress=False)
    assert same.folder == first.folder  # the same texts elsewhere: the same vectors, not again
    other = load_pool(write_pool(workdir, "other.txt", sentences(11)), config, progress=False)
    assert other.folder != first.folder
    assert np.array_equal(other.x[:10], first.x)


def test_repeated_and_empty_texts_are_dropped_and_labels_kept_when_asked(config, workdir):
    texts = ["a good film", "a bad film", "a good film", "", "badly made"]
    path = write_pool(
        workdir, "pool.tsv", texts, ["positive", "negative", "positive", "x", "negative"]
    )
    pool = load_pool(path, config, progress=False)
    assert pool.texts == ["a good film", "a bad film", "badly made"] and pool.labels is None
    labeled = load_pool(path, config, progress=False, with_labels=True)
    assert labeled.labels.tolist() == [1, 0, 0] and labeled.names == ["negative", "positive"]
    assert labeled.folder == pool.folder  # labels do not change the vectors


def test_a_labels_file_reads_pending_skipped_names_and_ids(workdir):
    path = workdir / "labels.csv"
    path.write_text(
        'text,label,guess\n"a, good film",positive,\nbad,0,\nmeh,,\nodd,skip,\ngood,positive,\n',
        encoding="utf-8",
    )
    answers = read_answers(path, ["negative", "positive"])
    assert answers.texts == ["a, good film", "bad", "meh", "odd", "good"]
    assert answers.labels.tolist() == [1, 0, PENDING, SKIPPED, 1]
    assert answers.labeled().tolist() == [True, True, False, False, True]
    named = read_answers(path, None)  # names from the file: sorted; ids mixed in are refused
    assert named.names == ["0", "positive"]
    path.write_text("text,label\na,positive\nb,neutral\n", encoding="utf-8")
    with pytest.raises(PipelineError, match=r"labels.csv, line 3: label 'neutral' is not one of"):
        read_answers(path, ["negative", "positive"])
