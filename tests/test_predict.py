import json
import re

import pytest
from conftest import ROOT, run_cli

from pipeline import PipelineError, tint
from pipeline.classifier import Classifier
from pipeline.data.reader import read_lines
from pipeline.predict import format_explained, format_table, predict

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


ANSI = re.compile(r"\x1b\[[0-9;]*m")
EXPLAINED = [
    {
        "text": "a  good\tfilm , not dull",
        "label": "positive",
        "probability": 0.9,
        "words": [
            {"word": "a", "start": 0, "end": 1, "weight": 0.01},
            {"word": "good", "start": 3, "end": 7, "weight": 1.2},
            {"word": "film", "start": 8, "end": 12, "weight": 0.3},
            {"word": ",", "start": 13, "end": 14, "weight": 0.0},
            {"word": "not", "start": 15, "end": 18, "weight": 0.5},
            {"word": "dull", "start": 19, "end": 23, "weight": -0.9},
        ],
    },
    {"text": "", "error": "empty text"},
]


def test_explained_table_tints_words_and_reads_without_colour(monkeypatch):
    coloured = format_explained(EXPLAINED, "banzhaf", color=True)
    assert "\x1b[38;5;16;48;5;33mgood\x1b[0m" in coloured  # the strongest: the deepest blue
    assert "\x1b[38;5;16;48;5;215mdull\x1b[0m" in coloured  # against the label: orange
    assert "0.900  a  \x1b[" in coloured and " , " in coloured  # weights near 0: untinted
    monkeypatch.setenv("NO_COLOR", "1")
    plain = format_explained(EXPLAINED, "banzhaf", color=tint.wants_color())
    assert "\x1b" not in plain  # and, but for the legend, the coloured table without colour:
    assert ANSI.sub("", coloured).splitlines()[:-1] == plain.splitlines()[:-1]
    lines = plain.splitlines()
    assert lines[1].endswith("  a  good\tfilm , not dull")  # the text as it is, spaces and all
    assert lines[2].split() == ["good", "+1.20", "dull", "-0.90", "not", "+0.50", "film", "+0.30",
                                "a", "+0.01"]  # fmt: skip
    assert lines[3] == format_table(EXPLAINED[1:]).splitlines()[1]  # an error row: as the table's
    assert lines[4] == tint.legend("banzhaf", color=False)
    assert "toward the label" in lines[4] and "log-odds" in lines[4] and "banzhaf" in lines[4]
    assert "toward" in ANSI.sub("", coloured.splitlines()[-1]) and "deeper" in coloured


def test_no_color_and_a_dumb_terminal_turn_colour_off(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert tint.wants_color()
    monkeypatch.setenv("NO_COLOR", "")  # set but empty: no-color.org says colour stays
    assert tint.wants_color()
    monkeypatch.setenv("TERM", "dumb")
    assert not tint.wants_color()


def test_explain_off_a_terminal_prints_classifier_explain_rows_as_json_lines(tiny_model, workdir):
    texts = ["a good film , i loved it", "", "dull , cold and tedious"]
    result = run_cli(PREDICT, "--explain", "--method", "occlusion", *texts, cwd=workdir)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows == Classifier.load(tiny_model).explain(texts, "occlusion")
    assert rows[1] == {"text": "", "error": "empty text"} and rows[0]["words"][0]["word"] == "a"


def test_help_explains_explain(workdir):
    result = run_cli(PREDICT, "--help", cwd=workdir)
    assert result.returncode == 0
    assert "--explain" in result.stdout and "NO_COLOR" in result.stdout
    assert "--method {occlusion,banzhaf,shap}" in result.stdout
