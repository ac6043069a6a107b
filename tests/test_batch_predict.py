import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, sentences

import pipeline.scale.batch_predict as bp
from pipeline import PipelineError
from pipeline.classifier import Classifier
from pipeline.tint import top_words

CHUNK, PARTS = 100, 20  # the killed run; the kill lands after the first part (1 of 20 here)


def test_jsonl_rows_in_order_with_ids_errors_and_the_classifier_labels(tiny_model, tmp_path):
    texts = ["a good film", "", "   ", 42, None, "i hated it", "badly made", "fun", "x" * 5000]
    path = tmp_path / "in.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    out = bp.batch_predict(tiny_model, path, tmp_path / "out.parquet", chunk_rows=4, progress=False)
    frame = pd.read_parquet(out)
    assert frame["row"].tolist() == list(range(len(texts)))
    assert frame["id"].tolist() == [f"r{i}" for i in range(len(texts))]
    errors = [
        None,
        "empty text",
        "empty text",
        "not a string",
        "not a string",
        None,
        None,
        None,
        None,
    ]
    assert frame["error"].replace({np.nan: None}).tolist() == errors
    classifier = Classifier.load(tiny_model)
    valid = [t for t, e in zip(texts, errors, strict=True) if e is None]
    labeled = frame[frame["error"].isna()]
    assert labeled["label"].tolist() == classifier.predict(valid)
    proba = classifier.predict_proba(valid)
    np.testing.assert_allclose(labeled[["p_negative", "p_positive"]], proba, atol=1e-6)
    np.testing.assert_allclose(labeled["probability"], proba.max(axis=1))
    assert (
        frame.loc[frame["error"].notna(), ["label", "probability", "p_positive"]].isna().all().all()
    )
    assert not (tmp_path / "out.parquet.parts").exists()


def test_a_finished_job_is_not_redone_and_a_changed_input_is(tiny_model, tmp_path, monkeypatch):
    path = tmp_path / "in.txt"
    path.write_text("\n".join(sentences(10)) + "\n")
    output = tmp_path / "out.parquet"
    labeled = []
    write_part = bp.write_part

    def record(parts, chunk, table):
        labeled.append(chunk.index)
        write_part(parts, chunk, table)

    monkeypatch.setattr(bp, "write_part", record)
    bp.batch_predict(tiny_model, path, output, chunk_rows=4, progress=False)
    bp.batch_predict(tiny_model, path, output, chunk_rows=4, progress=False)
    assert labeled == [0, 1, 2]
    path.write_text("\n".join(sentences(5)) + "\n")
    bp.batch_predict(tiny_model, path, output, chunk_rows=4, progress=False)
    assert labeled == [0, 1, 2, 0, 1]
    assert len(pd.read_parquet(output)) == 5


def start(tiny_model, path, output, cwd) -> subprocess.Popen:
    args = ["--model", str(tiny_model), "--input", str(path), "--output", str(output)]
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.scale.batch_predict", *args, "--chunk-rows", str(CHUNK)],
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_mid_run_then_rerun_redoes_no_finished_part(tiny_model, tmp_path, monkeypatch):
    path = tmp_path / "in.txt"
    path.write_text("\n".join(sentences(CHUNK * PARTS)) + "\n")
    parts = tmp_path / "out.parquet.parts"
    process = start(tiny_model, path, tmp_path / "out.parquet", tmp_path)
    deadline = time.monotonic() + 300
    while not list(parts.glob("part-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    finished = {p.name for p in parts.glob("part-*.parquet")}
    assert finished, "the run wrote no part before the deadline"
    assert len(finished) < PARTS, "the run finished before it could be killed"
    assert not (tmp_path / "out.parquet").exists()

    written = []
    write_part = bp.write_part

    def record(parts_dir, chunk, table):
        written.append(f"part-{chunk.index:06d}.parquet")
        write_part(parts_dir, chunk, table)

    monkeypatch.setattr(bp, "write_part", record)
    resumed = bp.batch_predict(tiny_model, path, tmp_path / "out.parquet", chunk_rows=CHUNK)
    assert sorted(set(written) | finished) == [f"part-{i:06d}.parquet" for i in range(PARTS)]
    assert not set(written) & finished
    monkeypatch.setattr(bp, "write_part", write_part)
    whole = bp.batch_predict(tiny_model, path, tmp_path / "whole.parquet", chunk_rows=CHUNK)
    pd.testing.assert_frame_equal(pd.read_parquet(resumed), pd.read_parquet(whole))


def test_missing_model_input_and_bad_output_are_clear(tiny_model, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("fine\n")
    with pytest.raises(PipelineError, match="no trained classifier"):
        bp.batch_predict(tmp_path / "nope", path, tmp_path / "o.parquet")
    with pytest.raises(PipelineError, match="input file not found"):
        bp.batch_predict(tiny_model, tmp_path / "gone.txt", tmp_path / "o.parquet")
    with pytest.raises(PipelineError, match=r"must be a \.parquet"):
        bp.batch_predict(tiny_model, path, tmp_path / "o.csv")


def test_explain_adds_the_top_words_of_classifier_explain(tiny_model, tmp_path):
    texts = ["a good film , i loved it", "", 7, "dull , cold and tedious", "fun", "i hated it"]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    output = tmp_path / "out.parquet"
    bp.batch_predict(tiny_model, path, output, chunk_rows=4, progress=False)
    assert "top_words" not in pq.read_schema(output).names
    bp.batch_predict(tiny_model, path, output, chunk_rows=4, progress=False, explain=True)
    table = pq.read_table(output)  # the finished plain run is not taken for an explained one
    assert table.schema.field("top_words").type == pa.list_(bp.TOP_WORD)
    rows = Classifier.load(tiny_model).explain(texts)
    assert table["label"].to_pylist() == [row.get("label") for row in rows]
    for got, row in zip(table["top_words"].to_pylist(), rows, strict=True):
        want = top_words(row.get("words", []))
        assert [(w["word"], w["start"], w["end"]) for w in got] == [
            (w["word"], w["start"], w["end"]) for w in want
        ]
        np.testing.assert_allclose(
            [w["weight"] for w in got], [w["weight"] for w in want], atol=1e-4
        )
        assert len(got) == min(5, len(row.get("words", [])))
    assert [len(words) for words in table["top_words"].to_pylist()][1:3] == [0, 0]  # errors
