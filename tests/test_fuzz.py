"""Property-based tests (Hypothesis) of every entry point a text goes through: arbitrary Unicode
text through `Classifier`, predict.py and batch prediction. Every text gets a label or its own
clear error, and a good text mixed in gets what it gets alone. Long and very long texts (up to the
service's limit) are read whole, each row saying in how many tokens and windows, and short texts
get the same vectors whether long ones are chunked or truncated. The service: test_fuzz_service.py.
"""

import dataclasses
import json
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import NEGATIVE, POSITIVE, ROOT, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import PipelineError
from pipeline.classifier import Classifier
from pipeline.labelable import printable
from pipeline.scale.batch_predict import batch_predict
from pipeline.serving.serve import Limits

# every general category, surrogates (Cs) and unassigned code points (Cn) included
CATEGORIES = (
    "Lu Ll Lt Lm Lo Mn Mc Me Nd Nl No Pc Pd Ps Pe Pi Pf Po Sm Sc Sk So Zs Zl Zp Cc Cf Cs Co Cn"
)
SPECIAL = [
    "\ud800", "\udfff", "\x00", "\x1b", "\x7f", "\x85", "\u200b", "\u200d", "\ufeff", "\u00ad",
    "\u202e", "\u2066", "\u0301", "\u20dd", "\u2028", "\u3000", "\ufffd", "\uffff", "\U0001f600",
    " ", "\t", "\r",
]  # fmt: skip
WORDS = sorted({word for sentence in POSITIVE + NEGATIVE for word in sentence.split()})
PIECE = st.one_of(
    st.characters(categories=CATEGORIES.split()),
    st.sampled_from(SPECIAL),
    st.sampled_from(WORDS).map(lambda word: f" {word} "),
)
SHORT = st.lists(PIECE, max_size=12).map("".join)
LONG = st.text(st.characters(categories=CATEGORIES.split()), min_size=150, max_size=250)
TEXT = st.one_of(SHORT, SHORT, SHORT, LONG)  # one in four around the service's 200-character limit
VALUE = st.one_of(TEXT, TEXT, TEXT, st.none(), st.integers(), st.binary(max_size=4))
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def classifier(tiny_model) -> Classifier:
    return Classifier.load(tiny_model)


def expected_error(classifier: Classifier, text: object) -> str | None:
    """Issue 26's definition, restated: a `str`, valid Unicode, with a token and something to
    read (not only separators, control, format, private-use or unassigned code points)."""
    if not isinstance(text, str):
        return "not a string"
    if not valid_unicode(text):
        return "not valid Unicode"
    invisible = all(unicodedata.category(char)[0] in "ZC" for char in text)
    no_token = not classifier.encoder.tokenizer(text, add_special_tokens=False)["input_ids"]
    return "empty text" if invisible or no_token else None


def assert_row(classifier: Classifier, text: object, row: dict) -> None:
    """`row` is `text`'s label, or its own error; a text's row can be sent as UTF-8 JSON."""
    assert row["text"] == printable(text)
    if isinstance(text, str):
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    error = expected_error(classifier, text)
    if error:
        assert set(row) == {"text", "error"} and row["error"].startswith(error)
    else:
        assert row["label"] in classifier.labels and "error" not in row
        assert sum(row["probabilities"].values()) == pytest.approx(1)
        assert row["probability"] == max(row["probabilities"].values())


def assert_same_label(mixed: dict, alone: dict) -> None:
    assert mixed.get("error") == alone.get("error")
    assert mixed.get("label") == alone.get("label")
    if "label" in alone:
        assert mixed["probability"] == pytest.approx(alone["probability"], abs=1e-6)


@FUZZ
@given(values=st.lists(VALUE, max_size=12))
def test_results_labels_each_text_or_gives_its_own_error(classifier, values):
    rows = classifier.results(values)
    assert len(rows) == len(values)
    for value, row in zip(values, rows, strict=True):
        assert_row(classifier, value, row)
        if "label" in row:  # a good text mixed in gets what it gets alone
            assert_same_label(row, classifier.results([value])[0])


@FUZZ
@given(texts=st.lists(TEXT, min_size=1, max_size=8))
def test_predict_and_predict_proba_label_good_texts_and_name_the_first_bad_one(classifier, texts):
    errors = [expected_error(classifier, text) for text in texts]
    bad = [i for i, error in enumerate(errors) if error]
    if bad:
        for call in (classifier.predict, classifier.predict_proba):
            with pytest.raises(PipelineError, match=f"^text {bad[0]}: {errors[bad[0]]}"):
                call(texts)
    else:
        proba = classifier.predict_proba(texts)
        assert proba.shape == (len(texts), len(classifier.labels))
        assert classifier.predict(texts) == [row["label"] for row in classifier.results(texts)]


LINE = TEXT.map(lambda text: text.replace("\n", " ").replace("\r", " "))
UTF8_LINE = LINE.map(printable)  # surrogates written as escapes


def lines_file(path: Path, lines: list[str]) -> None:
    """`lines` written one a line; a line with a surrogate makes the file not UTF-8 there."""
    path.write_bytes("".join(line + "\n" for line in lines).encode("utf-8", "surrogatepass"))


def valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def first_bad_line(lines: list[str]) -> int | None:
    """The number of the first line that holds a surrogate (from 1), if any."""
    return next((n for n, line in enumerate(lines, 1) if not valid_unicode(line)), None)


@settings(FUZZ, max_examples=25)
@given(lines=st.lists(LINE, min_size=1, max_size=10), suffix=st.sampled_from([".txt", ".jsonl"]))
def test_batch_predict_labels_every_line_or_stops_at_the_first_bad_byte(
    classifier, tiny_model, tmp_path, lines, suffix
):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # one per example
    source, output = folder / f"in{suffix}", folder / "out.parquet"
    if suffix == ".jsonl":  # JSON escapes carry any string, surrogates too
        source.write_text("".join(json.dumps({"text": t}) + "\n" for t in lines), "utf-8")
    else:
        lines_file(source, lines)
        if (bad := first_bad_line(lines)) is not None:
            with pytest.raises(PipelineError, match=f"line {bad}: not UTF-8"):
                batch_predict(tiny_model, source, output, progress=False)
            assert not output.exists()
            return
    batch_predict(tiny_model, source, output, progress=False)
    assert_labels_as_alone(classifier, lines, pq.read_table(output).to_pylist())


def assert_labels_as_alone(classifier: Classifier, texts: list, rows: list[dict]) -> None:
    """Batch prediction's `rows` give each text the label or the error it gets alone."""
    assert [row["row"] for row in rows] == list(range(len(texts)))
    for text, row in zip(texts, rows, strict=True):
        alone = classifier.results([text])[0]
        assert row["error"] == alone.get("error") and row["label"] == alone.get("label")
        if "label" in alone:
            assert row["probability"] == pytest.approx(alone["probability"], abs=1e-6)


@settings(FUZZ, max_examples=25)
@given(values=st.lists(st.one_of(TEXT, st.none()), min_size=1, max_size=10))
def test_batch_predict_labels_every_parquet_row(classifier, tiny_model, tmp_path, values):
    values = [v if v is None or valid_unicode(v) else printable(v) for v in values]  # Arrow: UTF-8
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # one per example
    source, output = folder / "in.parquet", folder / "out.parquet"
    pq.write_table(pa.table({"text": pa.array(values, pa.string())}), source)
    batch_predict(tiny_model, source, output, progress=False)
    assert_labels_as_alone(classifier, values, pq.read_table(output).to_pylist())


@settings(FUZZ, max_examples=2)  # a process each
@given(lines=st.lists(UTF8_LINE, min_size=20, max_size=40))
def test_predict_file_answers_each_line(classifier, tiny_model, tmp_path, lines):
    lines_file(tmp_path / "texts.txt", lines)  # overwritten by each example
    result = run_cli(
        str(ROOT / "pipeline" / "predict.py"), "--model", str(tiny_model), "--json",
        "--file", str(tmp_path / "texts.txt"), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    for line, row in zip(lines, rows, strict=True):
        assert_same_label(row, classifier.results([line])[0])


# Long and very long texts, up to the service's limit on one text: read whole (chunk, the
# default) in windows of the tiny model's 32 tokens, or cut and said to be (truncate)
MAX_CHARS = Limits().max_chars
WINDOW = 32 - 2  # tiny_config's max_length, [CLS] and [SEP] left out
STRIDE = WINDOW // 4  # encoder.stride's default: a quarter of a window
REPEATED = st.tuples(st.lists(PIECE, min_size=5, max_size=60).map("".join), st.integers(2, 400))
VERY_LONG = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=40, max_size=1000).map(" ".join),
    st.lists(PIECE, min_size=40, max_size=400).map("".join),
    REPEATED.map(lambda piece: piece[0] * piece[1]),
    LONG,
).map(lambda text: text[:MAX_CHARS])


def windows_for(tokens: int) -> int:
    """The windows a text of `tokens` real tokens is read in: overlapping by STRIDE."""
    return 1 if tokens <= WINDOW else 1 + -(-(tokens - WINDOW) // (WINDOW - STRIDE))


def truncating(classifier: Classifier) -> Classifier:
    """The same classifier and model, set to read only a text's first window."""
    encoder = classifier.encoder
    config = dataclasses.replace(encoder.config, long_texts="truncate")
    return dataclasses.replace(
        classifier, encoder=dataclasses.replace(encoder, config=config, cutter=None)
    )


@FUZZ
@given(texts=st.lists(VERY_LONG, min_size=1, max_size=4), short=SHORT)
def test_long_texts_are_read_whole_and_each_row_says_how(classifier, texts, short):
    rows = classifier.results([*texts, short])
    assert len(rows) == len(texts) + 1
    assert_same_label(rows[-1], classifier.results([short])[0])
    for text, row in zip(texts, rows[:-1], strict=True):
        assert_row(classifier, text, row)
        if "label" in row:
            ids = classifier.encoder.tokenizer(text, add_special_tokens=False)["input_ids"]
            assert row["tokens"] == len(ids) >= 1  # every token read
            assert row["windows"] == windows_for(len(ids)) >= 1
            assert "truncated" not in row
            assert_same_label(row, classifier.results([text])[0])


@FUZZ
@given(texts=st.lists(VERY_LONG, min_size=1, max_size=4))
def test_truncate_reads_the_first_window_and_says_it_cut(classifier, texts):
    cut = truncating(classifier)
    for text, row in zip(texts, cut.results(texts), strict=True):
        assert_row(cut, text, row)
        if "label" in row:
            tokens = len(cut.encoder.tokenizer(text, add_special_tokens=False)["input_ids"])
            assert row["tokens"] == min(tokens, WINDOW) >= 1 and row["windows"] == 1
            assert row.get("truncated", False) is (tokens > WINDOW)


@FUZZ
@given(texts=st.lists(st.one_of(SHORT, TEXT), min_size=1, max_size=12))
def test_short_texts_get_the_same_vectors_and_rows_either_way(classifier, texts):
    fits = [
        text
        for text in texts
        if valid_unicode(text)
        and len(classifier.encoder.tokenizer(text, add_special_tokens=False)["input_ids"]) <= WINDOW
    ]
    cut = truncating(classifier)
    assert cut.results(fits) == classifier.results(fits)
    if fits:
        np.testing.assert_array_equal(cut.encoder.encode(fits), classifier.encoder.encode(fits))
