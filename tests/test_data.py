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


def test_glue_tsv_with_header(tmp_path):
    split = read_split(write_tsv(tmp_path / "train.tsv", [("good ", 1), ("bad", 0)]))
    assert split.texts == ["good", "bad"]
    assert split.labels.tolist() == [1, 0]


def test_headerless_tsv_and_windows_line_endings(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(b"a fine film\t1\r\nnot fine\t0\r\n")
    split = read_split(path)
    assert split.texts == ["a fine film", "not fine"]
    assert split.labels.tolist() == [1, 0]


def test_csv_jsonl_and_parquet(tmp_path):
    frame = pd.DataFrame({"sentence": ['a "quoted", film', "meh"], "label": [1, 0]})
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "a.parquet")
    for name in ("a.csv", "a.jsonl", "a.parquet"):
        split = read_split(tmp_path / name)
        assert split.texts == ['a "quoted", film', "meh"], name
        assert split.labels.tolist() == [1, 0], name


def test_glue_test_split_is_unlabeled(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("index\tsentence\n0\tuneasy mishmash\n1\ta poor imitation\n")
    split = read_split(path, role="test")
    assert split.texts == ["uneasy mishmash", "a poor imitation"]
    assert split.labels is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"sentence\tlabel\n", "no sentences"),
        (b"text_a\tlabel\nfine\t1\n", "no 'sentence' or 'text' column"),
        (b"sentence\tscore\nfine\t1\n", "no 'label' column"),
        (b"sentence\tlabel\nfine\t1\nworse\t2\n", r"line 3: label '2' is not 0 or 1"),
        (b"sentence\tlabel\nfine\t1.0\n", r"line 2: label '1.0' is not 0 or 1"),
        (b"sentence\tlabel\nfine\tpos\n", r"line 2: label 'pos' is not 0 or 1"),
        (b"sentence\tlabel\nfine\t1\n \t0\n", "line 3: empty sentence .set data.empty=drop"),
        (b"sentence\tlabel\nfine\t1\nok\t1\nbad \xff\t0\n", r"line 4: not UTF-8"),
        (b"sentence\tlabel\nfine\t1\ntoo\tmany\t0\n", "Expected 2 fields in line 3"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "train.tsv"
    path.write_bytes(content)
    with pytest.raises(PipelineError, match=message) as err:
        read_split(path, cfg=DataConfig(labels=["negative", "positive"]))
    assert str(path) in str(err.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(PipelineError, match="data file not found"):
        read_split(tmp_path / "nope.tsv")
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


def test_very_long_sentence_is_read_whole(tmp_path):
    path = write_tsv(tmp_path / "train.tsv", [("great " * 20_000, 1), ("bad", 0)])
    assert len(read_split(path).texts[0]) == len("great " * 20_000) - 1


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


def test_other_column_names(tmp_path):
    frame = pd.DataFrame({"question": ["why", "who"], "coarse_label": [1, 3], "label": [9, 9]})
    frame.to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    split = read_split(
        tmp_path / "train.jsonl",
        cfg=DataConfig(text_column="question", label_column="coarse_label"),
    )
    assert split.texts == ["why", "who"] and split.labels.tolist() == [1, 3]
    assert split.names == ["0", "1", "2", "3"]


def test_one_class_is_refused(tmp_path):
    write_tsv(tmp_path / "train.tsv", [("good", 1), ("fine", 1)])
    write_tsv(tmp_path / "dev.tsv", [("bad", 0)])
    with pytest.raises(PipelineError, match="every training sentence has the label 'positive'"):
        load_splits(DataConfig(dir=str(tmp_path)))


def test_labeled_test_file_is_used_when_present_and_kfold_has_no_eval(tmp_path):
    write_tsv(tmp_path / "train.tsv", [("good", 1), ("bad", 0)])
    config = DataConfig(dir=str(tmp_path), protocol="kfold", test_split="test")
    assert set(load_splits(config)) == {"train"}
    write_tsv(tmp_path / "test.tsv", [("awful", 0)])
    splits = load_splits(config)
    assert set(splits) == {"train", "test"} and splits["test"].labels.tolist() == [0]
