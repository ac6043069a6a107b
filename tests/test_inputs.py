import numpy as np
import pandas as pd
import pytest
from conftest import run_cli, sentences

import pipeline.scale.batch_predict as bp
from pipeline.predict import read_texts
from pipeline.classifier import Classifier


def test_txt_rows_are_predict_file_lines(tiny_model, tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes("\ufeffa good film\r\n\nawful acting\rbadly made\n  \ni loved it".encode())
    out = bp.batch_predict(tiny_model, path, tmp_path / "out.parquet", chunk_rows=2, progress=False)
    frame = pd.read_parquet(out)
    lines = read_texts(str(path))
    assert len(frame) == len(lines) == 6
    assert "id" not in frame.columns
    results = Classifier.load(tiny_model).results(lines)
    assert frame["label"].replace({np.nan: None}).tolist() == [r.get("label") for r in results]
    assert frame["error"].replace({np.nan: None}).tolist() == [r.get("error") for r in results]


def test_parquet_input_keeps_its_id_column(tiny_model, tmp_path):
    path = tmp_path / "in.parquet"
    pd.DataFrame({"id": np.arange(100, 107), "sentence": sentences(7)}).to_parquet(path)
    frame = pd.read_parquet(
        bp.batch_predict(tiny_model, path, tmp_path / "o.parquet", chunk_rows=3)
    )
    assert frame["id"].tolist() == list(range(100, 107))
    assert frame["error"].isna().all()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("in.csv", b"text\nfine\n", "unknown input format '.csv'"),
        ("in.txt", b"", "no rows to label"),
        ("in.txt", b"fine\nok\nbad \xff\n", "in.txt, line 3: not UTF-8"),
        ("in.jsonl", b'{"text": "fine"}\n{"text": \n', "in.jsonl, line 2: not JSON"),
        ("in.jsonl", b'{"body": "fine"}\n', "no 'sentence' or 'text' column"),
        ("in.parquet", b"not parquet", "cannot read Parquet"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_model, tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    args = ["--model", str(tiny_model), "--input", name, "--output", "out.parquet"]
    result = run_cli("-m", "pipeline.scale.batch_predict", *args, cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert message in line
    assert not (tmp_path / "out.parquet").exists()
