"""The one reader: every format, its rules and messages, and generated files (Hypothesis)."""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, run_cli, sentences
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import pipeline.scale.batch_predict as bp
from pipeline import PipelineError
from pipeline.classifier import Classifier
from pipeline.config import DataConfig
from pipeline.data import formats
from pipeline.data.reader import read_chunks, read_lines, scan_input
from pipeline.data.splits import read_split
from pipeline.labelable import text_error

# characters that are not line ends for this reader, though str.splitlines() splits at them
NOT_LINE_ENDS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
LABELS = ["0", "1", "negative", "positive", "2", "pos", "", " 1", "1.0", "-1"]
GOOD_LABELS = {"0": 0, "1": 1, "negative": 0, "positive": 1}
SPECIAL = [*NOT_LINE_ENDS, "\n", "\t", '"', ",", "\x00", "\ufeff", " ", "\u200b", "\ud800", "a"]
TEXTS = st.text(st.one_of(st.characters(exclude_categories=()), st.sampled_from(SPECIAL)))
ROWS = st.lists(  # most labels good, so that some files load; a field may be missing
    st.tuples(
        TEXTS,
        st.one_of(st.sampled_from(["0", "1"]), st.sampled_from(LABELS)),
        st.sampled_from([None] * 8 + ["sentence", "label"]),
    ),
    min_size=1,
    max_size=8,
)
FAST = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def chunks_of(path, chunk_rows=1000, **columns):
    """The texts, labels, ids and lines of every chunk of `path`, joined."""
    texts, labels, ids, lines = [], [], [], []
    for chunk in read_chunks(path, chunk_rows, **columns):
        texts += chunk.texts
        labels += chunk.labels or []
        ids += chunk.ids or []
        lines += chunk.lines
    return texts, labels, ids, lines


# features' data files


def test_glue_tsv_with_header(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\ngood \t1\nbad\t0\n")
    split = read_split(path)
    assert split.texts == ["good", "bad"]
    assert split.labels.tolist() == [1, 0]


def test_headerless_tsv_and_windows_line_endings(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(b"\xef\xbb\xbfa fine film\t1\r\nnot fine\t0\r\n")
    split = read_split(path)
    assert split.texts == ["a fine film", "not fine"]
    assert split.labels.tolist() == [1, 0]


def test_csv_jsonl_and_parquet(tmp_path):
    frame = pd.DataFrame({"sentence": ['a "quoted", film', "meh\non two lines"], "label": [1, 0]})
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "a.parquet")
    for name in ("a.csv", "a.jsonl", "a.parquet"):
        split = read_split(tmp_path / name)
        assert split.texts == ['a "quoted", film', "meh\non two lines"], name
        assert split.labels.tolist() == [1, 0], name


def test_glue_test_split_is_unlabeled(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("index\tsentence\n0\tuneasy mishmash\n1\ta poor imitation\n")
    split = read_split(path, role="test")
    assert split.texts == ["uneasy mishmash", "a poor imitation"]
    assert split.labels is None


def test_other_column_names(tmp_path):
    frame = pd.DataFrame({"question": ["why", "who"], "coarse_label": [1, 3], "label": [9, 9]})
    frame.to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    split = read_split(
        tmp_path / "train.jsonl",
        cfg=DataConfig(text_column="question", label_column="coarse_label"),
    )
    assert split.texts == ["why", "who"] and split.labels.tolist() == [1, 3]
    assert split.names == ["0", "1", "2", "3"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", ": the file is empty"),
        (b"sentence\tlabel\n", ": no sentences"),
        (b"text_a\tlabel\nfine\t1\n", ": no 'sentence' or 'text' column"),
        (b"sentence\tscore\nfine\t1\n", ": no 'label' column"),
        (b"sentence\tlabel\nfine\t1\nworse\t2\n", r", line 3: label '2' is not 0 or 1"),
        (b"sentence\tlabel\nfine\t1.0\n", r", line 2: label '1.0' is not 0 or 1"),
        (b"sentence\tlabel\nfine\tpos\n", r", line 2: label 'pos' is not 0 or 1"),
        (b"sentence\tlabel\nfine\t1\n \t0\n", ", line 3: empty sentence (set data.empty=drop"),
        ("sentence\tlabel\nfine\t1\n\u200b\t0\n".encode(), ", line 3: empty sentence"),
        (b"sentence\tlabel\nfine\t1\nok\t1\nbad \xff\t0\n", ", line 4: not UTF-8"),
        (b"sentence\tlabel\nfine\t1\ntoo\tmany\t0\n", ", line 3: 3 fields, expected 2"),
        (b"sentence\tlabel\nfine\t1\nunlabeled\n", ", line 3: 1 field, expected 2"),
        (b"sentence\tlabel\nfine\t1\n\nworse\t7\n", ", line 4: label '7'"),  # after an empty line
        (b"good\t1\nbad\t0\tx\n", ", line 2: 3 fields, expected 2 (sentence, label)"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "train.tsv"
    path.write_bytes(content)
    with pytest.raises(PipelineError) as err:
        read_split(path, cfg=DataConfig(labels=["negative", "positive"]))
    assert str(err.value).startswith(str(path) + message)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("train.jsonl", '{"sentence": "fine", "label": 1}\n{"sentence": "\\ud800", "label": 0}\n',
         ", line 2: sentence not valid Unicode (unpaired surrogate U+D800 at character 1)"),
        ("train.jsonl", '{"sentence": "fine", "label": 1}\n\n{"sentence": 7, "label": 0}\n',
         ", line 3: sentence not a string"),
        ("train.jsonl", '{"sentence": "fine", "label": 1}\n[1]\n', ", line 2: not a JSON object"),
        ("train.jsonl", '{"sentence": "fine", "label": 1}\n' + "[" * 100_000 + "\n",
         ", line 2: not JSON (nested too deeply)"),
        ("train.csv", 'sentence,label\n"two\nlines",1\n"open,0\n', ', line 4: not valid CSV'),
        ("train.csv", 'sentence,label\n"two\nlines",1\nbad,x\n', ", line 4: label 'x'"),
        ("train.csv", "sentence,label\nfine,1\nbad\rmid,0\n", ", line 3: not valid CSV"),
    ],
)  # fmt: skip
def test_bad_rows_of_every_format_name_their_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PipelineError) as err:
        read_split(path)
    assert str(err.value).startswith(str(path) + message)


def test_parquet_errors_name_the_row(tmp_path):
    path = tmp_path / "train.parquet"
    pd.DataFrame({"sentence": ["fine", None, "bad"], "label": [1, 0, 0]}).to_parquet(path)
    with pytest.raises(PipelineError, match=r"train\.parquet, row 2: sentence not a string"):
        read_split(path)
    path.write_bytes(b"not parquet")
    with pytest.raises(PipelineError, match=r"train\.parquet: cannot read Parquet"):
        read_split(path)


def test_bad_sentences_are_dropped_with_data_empty_drop(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [("fine", 1), ("\ud800", 0), (None, 0), ("  ", 1), ("bad", 0)]
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    split = read_split(path, cfg=DataConfig(empty="drop"))
    assert split.texts == ["fine", "bad"] and split.labels.tolist() == [1, 0]


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(PipelineError, match="input file not found"):
        read_split(tmp_path / "nope.tsv")
    (tmp_path / "train.xlsx").write_text("x")
    with pytest.raises(PipelineError, match=r"unknown input format '\.xlsx'"):
        read_split(tmp_path / "train.xlsx")


def test_very_long_sentence_is_read_whole(tmp_path):
    for name, sep in (("train.tsv", "\t"), ("train.csv", ",")):
        path = tmp_path / name
        path.write_text(f"sentence{sep}label\n{'great ' * 40_000}{sep}1\nbad{sep}0\n")
        assert len(read_split(path).texts[0]) == len("great " * 40_000) - 1


# lines: predict --file and stdin, batch .txt; line ends are "\n" and "\r\n" only


def test_lines_end_at_newline_only(tmp_path):
    texts = [f"one{c}text" for c in NOT_LINE_ENDS] + ["", "  ", "last\r"]
    path = tmp_path / "in.txt"
    path.write_bytes(("\ufeff" + "\r\n".join(texts)).encode())
    assert read_lines(path) == texts
    assert chunks_of(path)[0] == texts
    tsv = tmp_path / "train.tsv"
    tsv.write_text("".join(f"{t}\t{i % 2}\n" for i, t in enumerate(texts[:-3])))
    assert read_split(tsv).texts == texts[:-3]


def test_a_bad_byte_and_a_missing_file_are_one_line(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"good\n" * 10_000 + b"b\xffd\n")
    with pytest.raises(PipelineError, match=r"in\.txt, line 10001: not UTF-8 \(byte 0xff\)"):
        read_lines(path)
    with pytest.raises(PipelineError, match=r"cannot read .*nope\.txt: No such file"):
        read_lines(tmp_path / "nope.txt")


def test_reading_lines_needs_neither_pandas_nor_pyarrow(tmp_path):
    (tmp_path / "in.txt").write_text("a good film\nawful\n")
    (tmp_path / "in.tsv").write_text("text\tid\nfine\t7\n")
    code = (
        "import sys; sys.modules.update(pandas=None, pyarrow=None)\n"
        "from pipeline.data.reader import read_chunks, read_lines\n"
        "assert read_lines('in.txt') == ['a good film', 'awful']\n"
        "[chunk] = read_chunks('in.tsv', 10)\n"
        "assert (chunk.texts, chunk.ids) == (['fine'], ['7'])\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": ""}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, text=True,
                            capture_output=True)  # fmt: skip
    assert result.returncode == 0, result.stderr


@FAST
@given(texts=st.lists(TEXTS.map(lambda t: t.replace("\n", "")), max_size=20), crlf=st.booleans())
def test_every_line_round_trips(tmp_path, texts, crlf):
    texts = [t for t in texts if not t.endswith("\r")]  # "\r" before "\n" is a CRLF line end
    if texts and texts[0].startswith("\ufeff"):
        texts[0] = "x" + texts[0]  # at the start of a file it is a BOM, and dropped
    path = tmp_path / "in.txt"
    data = ("\r\n" if crlf else "\n").join(texts) + ("\n" if texts else "")
    path.write_bytes(data.encode("utf-8", "surrogatepass"))
    if any(text_error(t) and "Unicode" in text_error(t) for t in texts):
        with pytest.raises(PipelineError, match=r"in\.txt, line \d+: not UTF-8"):
            read_lines(path)
    else:
        assert read_lines(path) == texts
        assert chunks_of(path, chunk_rows=3)[0] == texts


# batch prediction: texts and ids pass through as read


def test_batch_rows_pass_through_unchanged(tmp_path):
    values = ["fine", "\ud800", 42, None, ["a"], "  ", "x\u2028y"]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": v, "id": i}) + "\n" for i, v in enumerate(values)))
    texts, _, ids, lines = chunks_of(path, chunk_rows=2)
    assert texts == values
    assert ids == [str(i) for i in range(len(values))]  # JSON ids as text
    assert lines == list(range(1, len(values) + 1))
    parquet = tmp_path / "in.parquet"
    pd.DataFrame({"sentence": ["ok", None, ""], "id": [7, 8, 9]}).to_parquet(parquet)
    assert chunks_of(parquet)[:3] == (["ok", None, ""], [], [7, 8, 9])


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 7, 100])
def test_chunks_are_exact_across_blocks(tmp_path, monkeypatch, chunk_rows):
    monkeypatch.setattr(formats, "BLOCK_LINES", 4)
    rows = sentences(23)
    path = tmp_path / "in.tsv"
    path.write_text("id\ttext\n" + "".join(f"r{i}\t{s}\n\n" for i, s in enumerate(rows)))
    chunks = list(read_chunks(path, chunk_rows))
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert [c.start for c in chunks] == [i * chunk_rows for i in range(len(chunks))]
    assert all(len(c.texts) == chunk_rows for c in chunks[:-1])
    assert [t for c in chunks for t in c.texts] == rows
    assert [i for c in chunks for i in c.ids] == [f"r{i}" for i in range(23)]
    assert [n for c in chunks for n in c.lines] == list(range(2, 48, 2))


def test_tsv_and_csv_inputs_for_batch_prediction(tmp_path):
    (tmp_path / "in.tsv").write_text("id\ttext\na\tfine\nb\tawful\n")
    (tmp_path / "in.csv").write_text('review,id\n"fine, really",1\n')
    assert chunks_of(tmp_path / "in.tsv")[::2] == (["fine", "awful"], ["a", "b"])
    assert chunks_of(tmp_path / "in.csv", text_column="review")[::2] == (["fine, really"], ["1"])
    assert scan_input(tmp_path / "in.tsv")["rows"] == 2


def test_txt_rows_are_predict_file_lines(tiny_model, tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes("\ufeffa good film\r\n\nawful acting\rbadly made\n  \ni loved it".encode())
    out = bp.batch_predict(tiny_model, path, tmp_path / "out.parquet", chunk_rows=2, progress=False)
    frame = pd.read_parquet(out)
    lines = read_lines(path)
    assert lines == ["a good film", "", "awful acting\rbadly made", "  ", "i loved it"]
    assert len(frame) == len(lines)
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
        ("in.xlsx", b"text\nfine\n", "unknown input format '.xlsx'"),
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


# generated features files: each loads and round-trips, or stops at its line


def write_rows(path, rows, fmt, bom, crlf):
    """Write (text, label, missing field) rows as `fmt`; text it cannot hold becomes bad bytes."""
    end = "\r\n" if crlf else "\n"
    records = [
        {k: v for k, v in {"sentence": t, "label": y}.items() if k != missing}
        for t, y, missing in rows
    ]
    if fmt == "tsv":
        data = end.join(["sentence\tlabel", *("\t".join(r.values()) for r in records)]) + end
    elif fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator=end).writerows(
            [("sentence", "label"), *(list(r.values()) for r in records)]
        )
        data = buffer.getvalue()
    else:
        data = "".join(json.dumps(r, ensure_ascii=crlf) + end for r in records)
    path.write_bytes(b"\xef\xbb\xbf" * bom + data.encode("utf-8", "surrogatepass"))


def good(text, label, fmt, missing=None):
    """Whether a row must load: a labelable text a row of `fmt` holds, and a known label."""
    whole = fmt != "tsv" or not {"\t", "\n"} & set(text)
    return missing is None and whole and text_error(text) is None and label.strip() in GOOD_LABELS


@settings(FAST, max_examples=150)
@given(
    rows=ROWS,
    fmt=st.sampled_from(["tsv", "csv", "jsonl"]),
    bom=st.booleans(),
    crlf=st.booleans(),
)
@example(rows=[("", "0", "label"), ("0", "0", None)], fmt="tsv", bom=False, crlf=False)
def test_generated_text_files_load_and_round_trip_or_name_their_line(
    tmp_path, rows, fmt, bom, crlf
):
    if fmt == "tsv":  # a TSV row is one line, and a tab in a text of a short row would be a field
        rows = [(t.replace("\n", " ").replace("\t", " " if m else "\t"), y, m) for t, y, m in rows]
        # a short row whose one field is empty is an empty line, which the reader skips
        rows = [(t, y, m) for t, y, m in rows if not (m and (y if m == "sentence" else t) == "")]
        assume(rows)
    if fmt == "csv" and not crlf:  # csv.writer quotes a "\r" only when its lines end in one
        rows = [(t.replace("\r", " "), y, m) for t, y, m in rows]
    path = tmp_path / f"train.{fmt}"
    write_rows(path, rows, fmt, bom, crlf)
    cfg = DataConfig(labels=["negative", "positive"])
    if all(good(t, y, fmt, m) for t, y, m in rows):
        split = read_split(path, cfg=cfg)
        assert list(split.texts) == [t.strip() for t, _, _ in rows]
        assert split.labels.tolist() == [GOOD_LABELS[y.strip()] for _, y, _ in rows]
    else:
        with pytest.raises(PipelineError) as err:
            read_split(path, cfg=cfg)
        assert str(err.value).startswith((f"{path}, line ", f"{path}: no "))  # or no column, rows


@FAST
@given(
    texts=st.lists(st.one_of(st.none(), TEXTS), min_size=1, max_size=8),
    labels=st.lists(st.sampled_from(LABELS), min_size=8, max_size=8),
    missing=st.sampled_from([None, "sentence", "label"]),
)
def test_generated_parquet_files_load_and_round_trip_or_name_their_row(
    tmp_path, texts, labels, missing
):
    texts = [t if t is None else t.encode("utf-8", "replace").decode() for t in texts]
    frame = pd.DataFrame({"sentence": texts, "label": labels[: len(texts)]})
    path = tmp_path / "train.parquet"
    frame.drop(columns=[missing] if missing else []).to_parquet(path)
    cfg = DataConfig(labels=["negative", "positive"])
    if not missing and all(good(t, y, "parquet") for t, y in zip(texts, labels, strict=False)):
        split = read_split(path, cfg=cfg)
        assert list(split.texts) == [t.strip() for t in texts]
    else:
        with pytest.raises(PipelineError) as err:
            read_split(path, cfg=cfg)
        assert str(err.value).startswith((f"{path}, row ", f"{path}: no '{missing}'"))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("train.jsonl", b'{"sentence": "fine", "label": 1}\n{"sentence": "\\ud800", "label": 0}\n',
         ", line 2: sentence not valid Unicode"),
        ("train.csv", b'sentence,label\nfine,1\n"two\nlines",1\n"open,0\n',
         ", line 5: not valid CSV"),
    ],
)  # fmt: skip
def test_bad_files_stop_the_command_at_their_line(
    tiny_config, tiny_data, workdir, name, content, message
):
    (tiny_data / "train.tsv").unlink()
    (tiny_data / name).write_bytes(content)
    result = run_cli("-m", "pipeline.features", "--config", str(tiny_config), cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {tiny_data / name}{message}")
    assert "Traceback" not in result.stderr
    assert not (workdir / "data" / "features").exists()
