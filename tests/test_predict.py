import json

import pytest
from conftest import ROOT, run_cli

from pipeline import PipelineError
from pipeline.data.reader import read_lines
from pipeline.predict import format_table, predict

PREDICT = str(ROOT / "pipeline" / "predict.py")


def test_every_text_gets_an_answer_or_its_own_error(tiny_model):
    texts = ["a good film", "", "   ", "😀 great 🎬", "素晴らしい映画", "x" * 100_000]
    results = predict(texts, tiny_model)
    assert [r["text"] for r in results] == texts
    assert [r.get("error") for r in results] == [None, "empty text", "empty text", None, None, None]
    for r in results[:1] + results[3:]:
        assert r["label"] in ("positive", "negative")
        assert 0.5 <= r["probability"] <= 1.0
        assert r["probability"] == pytest.approx(max(r["p_positive"], 1 - r["p_positive"]))


def test_same_text_same_answer_whatever_the_batch(tiny_model):
    alone = predict(["a real pleasure"], tiny_model)[0]["p_positive"]
    batch = predict(["awful", "a real pleasure", "x " * 300], tiny_model)[1]["p_positive"]
    assert alone == pytest.approx(batch, abs=1e-5)


def test_read_lines_keeps_blank_lines_and_reports_bad_bytes(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"good\r\n\r\nbad\n")
    assert read_lines(str(path)) == ["good", "", "bad"]
    path.write_bytes(b"good\nb\xffd\n")
    with pytest.raises(PipelineError, match="line 2: not UTF-8"):
        read_lines(str(path))


def test_table_shortens_long_texts():
    table = format_table(
        [
            {"text": "y" * 200, "label": "positive", "probability": 0.9},
            {"text": "", "error": "empty text"},
        ]
    )
    assert "positive" in table and "0.900" in table and "y" * 68 not in table
    assert "empty text" in table


def test_command_line_json_and_stdin(tiny_model, workdir):
    result = run_cli(
        PREDICT, "--json", "--file", "-", "a good film", cwd=workdir, stdin="i loved it\n\nawful\n"
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["a good film", "i loved it", "", "awful"]
    assert rows[2]["error"] == "empty text"


def test_predict_before_train_is_a_clear_error(workdir):
    result = run_cli(PREDICT, "a good film", cwd=workdir)
    assert result.returncode == 2
    assert "no trained classifier" in result.stderr and "make features train" in result.stderr
    assert "Traceback" not in result.stderr
