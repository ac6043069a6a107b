"""Property-based tests (Hypothesis) of POST /predict and /explain: every request gets a 2xx or a
4xx (never a 500 or a traceback), each text its label or its own error (and its words, whose spans
index it), and good requests sent together with bad ones keep their labels."""

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import NEGATIVE, POSITIVE, TINY_LIMITS
from fastapi.testclient import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_fuzz import FUZZ, TEXT, assert_row, assert_same_label, valid_unicode

from pipeline.bench.battery import Case, send
from pipeline.classifier import Classifier
from pipeline.serving.serve import Limits, create_app

ROUTES = ["/predict", "/explain"]
JSON_TYPES = ["application/json", "application/json; charset=utf-8", "Application/JSON", None]
OTHER_TYPES = ["text/plain", "application/x-www-form-urlencoded", "application/json-seq", ""]
CONTENT_TYPE = st.sampled_from(JSON_TYPES) | st.sampled_from(OTHER_TYPES)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=12,
)


def encode(value: object, ascii_only: bool) -> bytes:
    """`value` as a JSON body: surrogates as escapes (valid), or as their bytes (not UTF-8)."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


BODY = st.one_of(
    st.binary(max_size=64),
    st.builds(encode, JSON_VALUE, st.booleans()),
    st.builds(
        encode, st.fixed_dictionaries({"texts": st.lists(JSON_VALUE, max_size=4)}), st.just(True)
    ),
    st.builds(encode, st.fixed_dictionaries({"texts": st.lists(TEXT, max_size=4)}), st.booleans()),
)


@pytest.fixture
def classifier(tiny_model) -> Classifier:
    return Classifier.load(tiny_model)


@pytest.fixture
def client(tiny_model) -> Iterator[TestClient]:
    app = create_app(tiny_model, Limits(**{**TINY_LIMITS, "batch_window_s": 0.001}))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def post(
    client: TestClient, body: bytes, content_type: str | None, path: str = "/predict"
) -> tuple[int, dict]:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post(path, content=body, headers=headers)
    assert len(response.headers["X-Request-ID"]) == 16
    return response.status_code, response.json()


@FUZZ
@pytest.mark.parametrize("path", ROUTES)
@given(texts=st.lists(TEXT, max_size=10), ascii_only=st.booleans(), content_type=CONTENT_TYPE)
@example(texts=["\ud800\udc00"], ascii_only=True, content_type="application/json")
def test_texts_get_their_rows_or_the_right_4xx(
    client, classifier, path, texts, ascii_only, content_type
):
    body = encode({"texts": texts}, ascii_only)
    status, answer = post(client, body, content_type, path)
    if ascii_only:  # what the server reads: JSON joins a "\ud800\udc00" escape pair into one
        texts = json.loads(body)["texts"]  # character (U+10000), as every JSON reader does
    if content_type not in JSON_TYPES:
        assert status == 415
    elif not ascii_only and not all(map(valid_unicode, texts)):
        assert (status, answer) == (400, {"error": "the body is not UTF-8"})
    elif len(texts) > TINY_LIMITS["max_texts"] or any(
        len(text) > TINY_LIMITS["max_chars"] for text in texts
    ):
        assert status == 413
    else:
        assert status == 200 and len(answer["results"]) == len(texts)
        for text, row in zip(texts, answer["results"], strict=True):
            assert_row(classifier, text, row)
            assert_same_label(row, classifier.results([text])[0])
            assert ("words" in row) == (path == "/explain" and "label" in row)
            for word in row.get("words", []):  # code point spans, through JSON both ways
                assert text[word["start"] : word["end"]] == word["word"]
    assert status == 200 or list(answer) == ["error"]


@FUZZ
@pytest.mark.parametrize("path", ROUTES)
@given(body=BODY, content_type=CONTENT_TYPE)
def test_any_body_gets_a_2xx_or_a_4xx_in_json(client, path, body, content_type):
    status, answer = post(client, body, content_type, path)
    assert 200 <= status < 500
    if status == 200:
        assert len(answer["results"]) == len(json.loads(body)["texts"])
    else:
        assert list(answer) == ["error"] and "Traceback" not in answer["error"]


GOOD = [f"{text} {i}" for i, text in enumerate(POSITIVE + NEGATIVE)]


@settings(FUZZ, max_examples=15)
@given(bad=st.lists(st.tuples(BODY, CONTENT_TYPE), min_size=1, max_size=8))
def test_good_requests_sent_with_bad_ones_keep_their_labels(tiny_server, classifier, bad):
    good = [Case("good", 200, json.dumps({"texts": [text]}).encode()) for text in GOOD]
    cases = good + [Case("bad", 0, body, kind) for body, kind in bad]
    with ThreadPoolExecutor(len(cases)) as pool:  # they meet: TINY_LIMITS' window is long
        answers = list(pool.map(lambda case: send(tiny_server, case), cases))
    for text, (status, answer) in zip(GOOD, answers, strict=False):
        assert status == 200
        assert_same_label(answer["results"][0], classifier.results([text])[0])
    assert all(200 <= status < 500 for status, _ in answers[len(good) :])
