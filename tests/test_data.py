import logging
import socket

import numpy as np
import pandas as pd
import pytest
from conftest import NEGATIVE, POSITIVE, write_tsv

from pipeline import PipelineError
from pipeline.config import DataConfig
from pipeline.data.splits import content_hash, load_splits, read_split
from pipeline.data.tables import find_split_file


def test_missing_folder_and_split_file(tmp_path):
    with pytest.raises(PipelineError, match="data folder not found"):
        find_split_file(tmp_path / "nope", "train")
    with pytest.raises(PipelineError, match="no file for split 'train'"):
        find_split_file(tmp_path, "train")


def test_validation_split_may_be_called_dev(tiny_data):
    assert find_split_file(tiny_data, "validation").name == "dev.tsv"
    splits = load_splits(DataConfig(dir=str(tiny_data)))
    assert (len(splits["train"]), len(splits["eval"])) == (40, 20)


def test_limit_then_stratified_holdout_is_reproducible(tmp_path):
    rows = [(f"{s} {i}", 1) for i, s in enumerate(POSITIVE * 6)]
    rows += [(f"{s} {i}", 0) for i, s in enumerate(NEGATIVE * 4)]
    write_tsv(tmp_path / "train.tsv", rows, header=False)
    config = DataConfig(dir=str(tmp_path), limit=80, protocol="holdout", seed=1)
    splits = load_splits(config)
    train, held = splits["train"], splits["eval"]
    assert (len(train), len(held)) == (60, 20)
    assert set(train.texts).isdisjoint(held.texts)
    assert set(train.texts) | set(held.texts) == {s for s, _ in rows[:80]}
    assert held.labels.mean() == pytest.approx(np.mean([y for _, y in rows[:80]]))
    assert load_splits(config)["eval"].texts == held.texts
    other_seed = load_splits(DataConfig(dir=str(tmp_path), limit=80, protocol="holdout", seed=2))
    assert other_seed["eval"].texts != held.texts


def test_content_hash_sees_every_change(tiny_data):
    splits = load_splits(DataConfig(dir=str(tiny_data)))
    before = content_hash(splits)
    assert content_hash(load_splits(DataConfig(dir=str(tiny_data)))) == before
    splits["train"].labels[0] = 1 - splits["train"].labels[0]
    assert content_hash(splits) != before


def test_hub_offline_fails_fast_and_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    attempts = []

    def refuse(*args, **kwargs):  # a lookup or connection is what would wait on the hub
        attempts.append(args)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    with pytest.raises(PipelineError, match="DATA=") as err:
        load_splits(DataConfig(dataset="glue", subset="sst2"))
    assert "cannot load dataset 'glue/sst2'" in str(err.value)
    assert attempts == []


def test_empty_sentences_can_be_dropped_with_a_count(tmp_path, caplog):
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\nfine\t1\n\t0\n   \t1\nbad\tpos\n")
    with pytest.raises(PipelineError, match="line 5: label 'pos'"):  # line numbers still right
        read_split(path, cfg=DataConfig(empty="drop"))
    path.write_text("sentence\tlabel\nfine\t1\n\t0\n   \t1\nbad\t0\n")
    split = read_split(path, cfg=DataConfig(empty="drop"))
    assert split.texts == ["fine", "bad"] and split.labels.tolist() == [1, 0]
    assert "dropped 2 empty sentences" in caplog.text


def test_duplicates_are_reported_and_kept(tmp_path, caplog):
    path = write_tsv(tmp_path / "train.tsv", [("fine", 1), ("fine", 1), ("meh", 0), ("meh", 1)])
    assert len(read_split(path)) == 4
    assert "1 duplicate rows, 1 sentences with more than one label" in caplog.text


def test_named_labels_become_sorted_ids_in_every_split(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    pd.DataFrame(
        {"text": ["good", "bad", "fine"], "label": ["positive", "negative", "positive"]}
    ).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"text": ["bad", "good"], "label": ["negative", "positive"]}).to_csv(
        tmp_path / "dev.csv", index=False
    )
    splits = load_splits(DataConfig(dir=str(tmp_path)))
    assert splits["train"].labels.tolist() == [1, 0, 1]
    assert splits["eval"].labels.tolist() == [0, 1]
    assert splits["train"].names == splits["eval"].names == ["negative", "positive"]
    assert "0 = negative, 1 = positive" in caplog.text


def test_five_integer_classes_and_names_from_the_config(tmp_path):
    rows = [(f"sentence {i}", i % 5) for i in range(20)]
    write_tsv(tmp_path / "train.tsv", rows)
    write_tsv(tmp_path / "dev.tsv", rows[:5])
    split = load_splits(DataConfig(dir=str(tmp_path)))["train"]
    assert split.names == ["0", "1", "2", "3", "4"] and split.labels.tolist()[:6] == [
        0,
        1,
        2,
        3,
        4,
        0,
    ]
    names = ["very negative", "negative", "neutral", "positive", "very positive"]
    split = load_splits(DataConfig(dir=str(tmp_path), labels=names))["train"]
    assert split.names == names and split.labels.tolist()[:2] == [0, 1]


def test_config_names_accept_names_and_ids_and_refuse_others(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\nwhat is x\tHUM\nwhere\t4\nwhen\tNUM\n")
    cfg = DataConfig(labels=["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"])
    assert read_split(path, cfg=cfg).labels.tolist() == [3, 4, 5]
    path.write_text("sentence\tlabel\nwhat is x\tHUM\nwho\tPERSON\n")
    with pytest.raises(PipelineError, match=r"line 3: label 'PERSON' is not one of ABBR, DESC"):
        read_split(path, cfg=cfg)
    path.write_text("sentence\tlabel\nwhat is x\tHUM\nwho\t3\n")
    with pytest.raises(PipelineError, match=r"line 3: label '3' is not one of HUM"):
        read_split(path)  # inferred names: ids are ambiguous


def test_one_class_is_refused(tmp_path):
    write_tsv(tmp_path / "train.tsv", [("good", 1), ("fine", 1)])
    write_tsv(tmp_path / "dev.tsv", [("bad", 0)])
    with pytest.raises(PipelineError, match="every training sentence has the label 'positive'"):
        load_splits(DataConfig(dir=str(tmp_path)))


def test_labeled_test_file_is_used_when_present_and_kfold_has_no_eval(tmp_path):
    write_tsv(tmp_path / "train.tsv", [("good", 1), ("bad", 0)])
    config = DataConfig(dir=str(tmp_path), protocol="kfold")  # test_split: "test" by default
    assert set(load_splits(config)) == {"train"}
    write_tsv(tmp_path / "test.tsv", [("awful", 0)])
    splits = load_splits(config)
    assert set(splits) == {"train", "test"} and splits["test"].labels.tolist() == [0]
    (tmp_path / "test.tsv").write_text("index\tsentence\n0\tuneasy\n")  # GLUE's, unlabeled
    assert load_splits(config)["test"].labels is None
    assert set(load_splits(DataConfig(dir=str(tmp_path), protocol="kfold", test_split=None))) == {
        "train"
    }


def test_a_hub_dataset_without_a_test_split_has_none(monkeypatch, caplog):
    datasets = pytest.importorskip("datasets")
    caplog.set_level(logging.DEBUG)
    train = datasets.Dataset.from_dict({"text": ["good", "bad"], "label": [1, 0]})
    monkeypatch.setattr(
        datasets, "load_dataset", lambda *args: datasets.DatasetDict(train=train, validation=train)
    )
    splits = load_splits(DataConfig(dataset="some/set", subset=None))
    assert set(splits) == {"train", "eval"} and splits["train"].texts == ["good", "bad"]
    assert "dataset 'some/set' has no test split, so no test split" in caplog.text
    monkeypatch.setattr(datasets, "load_dataset", lambda *args: datasets.DatasetDict(train=train))
    with pytest.raises(PipelineError, match="has no split 'validation'"):
        load_splits(DataConfig(dataset="some/set", subset=None))
