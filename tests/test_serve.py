"""The HTTP service over real HTTP on a loopback port: answers, limits, batching, failures."""

import json
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import NEGATIVE, POSITIVE, TINY_LIMITS

from pipeline import classifier
from pipeline.bench.battery import JSON, Case, bad_requests, connect, hang_up, mixed, send
from pipeline.bench.serving import drive
from pipeline.bench.soak import MALFORMED_EVERY, malformed, reference, soak_request
from pipeline.classifier import Classifier
from pipeline.serving.failures import INTERNAL
from pipeline.serving.serve import Limits, token_guess


def predict(base: str, texts: list[str]) -> tuple[int, dict]:
    return send(base, Case("good", 200, json.dumps({"texts": texts}).encode()))


def post_body(base: str, body: bytes) -> tuple[int, str, dict]:
    """POST `body` to /predict on a new connection: status, X-Request-ID and parsed answer."""
    conn = connect(base)
    try:
        conn.request("POST", "/predict", body, {"Content-Type": JSON})
        response = conn.getresponse()
        return response.status, response.headers["X-Request-ID"], json.loads(response.read())
    finally:
        conn.close()


def post_raw(base: str, body: bytes) -> tuple[int, str, bytes]:
    """POST `body` to /predict on a new connection: status, Content-Type and the raw answer."""
    conn = connect(base)
    try:
        conn.request("POST", "/predict", body, {"Content-Type": JSON})
        response = conn.getresponse()
        return response.status, response.headers["Content-Type"], response.read()
    finally:
        conn.close()


def all_at_once(base: str, bodies: list[bytes]) -> list[tuple[int, str, dict]]:
    """Send every body at the same time (they meet in batches: TINY_LIMITS' window is long)."""
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: post_body(base, body), bodies))


def get(base: str, path: str) -> tuple[str, str]:
    with urllib.request.urlopen(base + path, timeout=30) as response:
        return response.headers["Content-Type"], response.read().decode()


def test_predict_answers_each_text_as_the_classifier_does(tiny_server, tiny_model):
    texts = ["a good film", "", "awful", "😀 great"]
    status, answer = predict(tiny_server, texts)
    expected = Classifier.load(tiny_model).results(texts)
    assert status == 200
    for got, want in zip(answer["results"], expected, strict=True):
        assert got.keys() == want.keys() and got.get("label") == want.get("label")
        assert got.get("probability") == pytest.approx(want.get("probability"), abs=1e-6)
    assert answer["results"][1] == {"text": "", "error": "empty text"}
    assert predict(tiny_server, []) == (200, {"results": []})


def test_health_model_docs_and_page(tiny_server, tiny_model):
    assert json.loads(get(tiny_server, "/health")[1])["status"] == "ok"
    assert json.loads(get(tiny_server, "/model")[1]) == json.loads(
        (tiny_model / "model.json").read_text()
    )
    schema = json.loads(get(tiny_server, "/openapi.json")[1])
    assert {"/predict", "/health", "/model"} <= set(schema["paths"])
    assert "swagger-ui" in get(tiny_server, "/docs")[1]
    assert get(tiny_server, "/static-offline-docs/swagger-ui.css")[0].startswith("text/css")
    kind, page = get(tiny_server, "/")
    assert kind.startswith("text/html") and 'id="texts"' in page


def test_every_bad_request_gets_its_4xx_json_error_and_the_server_goes_on(tiny_server):
    cases = bad_requests(Limits(**TINY_LIMITS))
    answers = {case.name: send(tiny_server, case) for case in cases}
    assert {name: status for name, (status, _) in answers.items()} == {
        case.name: case.status for case in cases
    }
    for _, answer in answers.values():
        assert list(answer) == ["error"] and "Traceback" not in answer["error"]
    assert "at most 8" in answers["9 texts"][1]["error"]
    assert "application/json" in answers["Content-Type: text/plain"][1]["error"]
    hang_up(tiny_server)
    assert predict(tiny_server, ["a good film"])[0] == 200


def test_bad_and_good_requests_at_once(tiny_server):
    result = mixed(tiny_server, bad_requests(Limits(**TINY_LIMITS)), POSITIVE + NEGATIVE)
    assert result["as_expected"] == result["requests"]


def test_requests_sent_together_are_labeled_together(tiny_server):
    before = json.loads(get(tiny_server, "/health")[1])
    texts = POSITIVE + NEGATIVE
    with ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(lambda text: predict(tiny_server, [text]), texts))
    after = json.loads(get(tiny_server, "/health")[1])
    assert [answer["results"][0]["text"] for _, answer in answers] == texts
    assert after["texts"] - before["texts"] == len(texts)
    assert after["batches"] - before["batches"] < len(texts)


def test_a_failure_inside_is_a_500_without_details_and_the_next_request_works(
    tiny_server, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(Classifier, "_proba", broken)
    status, request_id, answer = post_body(tiny_server, b'{"texts": ["a good film"]}')
    assert (status, answer) == (500, {"error": INTERNAL})
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"request {request_id} failed: RuntimeError" in logged
    assert "secret" not in logged and "a good film" not in logged
    monkeypatch.undo()
    assert predict(tiny_server, ["a good film"])[0] == 200


def test_a_text_that_breaks_labeling_fails_only_its_own_request(tiny_server, monkeypatch, caplog):
    rows = classifier.result_rows  # called with the texts, after they are encoded

    def breaking(texts, *args):
        if any("poison" in text for text in texts):
            raise RuntimeError("poison")
        return rows(texts, *args)

    good = [f"{text} {i}" for i, text in enumerate(POSITIVE + NEGATIVE + POSITIVE)]
    alone = {text: predict(tiny_server, [text])[1]["results"][0] for text in good}
    monkeypatch.setattr(classifier, "result_rows", breaking)
    bodies = [json.dumps({"texts": [text]}).encode() for text in good]
    for i in (4, 15, 26):
        bodies.insert(i, json.dumps({"texts": ["a good film", f"poison {i}"]}).encode())
    answers = all_at_once(tiny_server, bodies)
    poisoned = [answer for body, answer in zip(bodies, answers, strict=True) if b"poison" in body]
    assert [(status, answer) for status, _, answer in poisoned] == [(500, {"error": INTERNAL})] * 3
    for status, _, answer in answers:
        if status == 200:
            (row,) = answer["results"]
            assert row["label"] == alone[row["text"]]["label"]
            assert row["probability"] == pytest.approx(alone[row["text"]]["probability"], abs=1e-6)
    assert sum(status == 200 for status, _, _ in answers) == len(good)
    failed = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert sorted(message.split()[1] for message in failed) == sorted(i for _, i, _ in poisoned)
    assert not any("poison" in r.getMessage() for r in caplog.records)


def test_unpaired_surrogates_among_good_requests(tiny_server):
    """Issue 26: three {"texts": ["\\ud800"]} among 30 good requests made 13 of those fail."""
    good = [f"{text} {i}" for i, text in enumerate(POSITIVE + NEGATIVE + POSITIVE)]
    alone = {text: predict(tiny_server, [text])[1]["results"][0]["label"] for text in good}
    bodies = [json.dumps({"texts": [text]}).encode() for text in good]
    for i in (4, 15, 26):
        bodies.insert(i, b'{"texts": ["\\ud800"]}')
    answers = all_at_once(tiny_server, bodies)
    assert {status for status, _, _ in answers} == {200}
    rows = [answer["results"][0] for _, _, answer in answers]
    bad = [row for row in rows if "error" in row]
    assert bad == [{"text": "\\ud800", "error": bad[0]["error"]}] * 3
    assert bad[0]["error"].startswith("not valid Unicode (unpaired surrogate U+D800")
    assert {row["text"]: row["label"] for row in rows if "label" in row} == alone
    assert len({request_id for _, request_id, _ in answers}) == len(answers)


def test_the_model_loads_and_labels_on_one_thread_not_the_main_one(
    tiny_model, monkeypatch, request
):
    threads = {"load": set(), "results": set()}
    load, results = Classifier.load.__func__, Classifier.results

    def recorded(name, method):
        def call(*args, **kwargs):
            threads[name].add(threading.get_ident())
            return method(*args, **kwargs)

        return call

    monkeypatch.setattr(Classifier, "load", classmethod(recorded("load", load)))
    monkeypatch.setattr(Classifier, "results", recorded("results", results))
    base = request.getfixturevalue("tiny_server")  # the server starts after the patches
    assert predict(base, ["a good film"])[0] == 200
    assert len(threads["load"]) == 1 and threads["load"] == threads["results"]
    assert threading.main_thread().ident not in threads["load"]


def test_unpaired_surrogates_are_answered_as_escapes_in_utf8_json(tiny_server):
    """The rows' texts are made printable once, by `Classifier.results`: the answer is strict
    UTF-8, and no string in it holds a raw surrogate (nor a JSON escape that decodes to one)."""
    texts = ["\ud800 x", "a \udfff", "\udc00\ud800", "😀 \ud83d\ude00 fine", "a good film"]
    status, _, raw = post_raw(tiny_server, json.dumps({"texts": texts}).encode())
    assert status == 200
    answer = json.loads(raw.decode("utf-8"))  # strict: a raw surrogate would not decode
    rows = answer["results"]
    assert [row["text"] for row in rows] == [
        "\\ud800 x", "a \\udfff", "\\udc00\\ud800", "😀 😀 fine", "a good film"
    ]  # fmt: skip
    for row in rows:
        row["text"].encode("utf-8")  # no surrogate in it
    assert [("error" in row) for row in rows] == [True, True, True, False, False]


def test_a_texts_guessed_tokens_stop_at_max_length_only_when_the_encoder_truncates():
    truncates = token_guess({"max_length": 128})
    windows = token_guess({"max_length": 128, "long_texts": "chunk"})
    assert truncates("a good film") == windows("a good film") == 4
    assert (truncates("x" * 5000), windows("x" * 5000)) == (128, 1252)


def test_a_small_request_sent_during_a_big_one_is_answered_first(tiny_model, monkeypatch, request):
    """Fair batching: the big request is labeled over many batches, taking turns, so a
    one-sentence request sent while it runs does not wait for all of it (issue 31)."""
    monkeypatch.setitem(TINY_LIMITS, "max_texts", 256)
    monkeypatch.setitem(TINY_LIMITS, "batch_tokens", 64)  # one or two of the big texts
    base = request.getfixturevalue("tiny_server")  # the server starts with these limits
    big = [f"{text} {i} " * 5 for i, text in enumerate((POSITIVE + NEGATIVE) * 12)]  # 240 texts
    finished: list[str] = []

    def send_big() -> None:
        status, answer = predict(base, big)
        assert status == 200 and len(answer["results"]) == len(big)
        finished.append("big")

    before = json.loads(get(base, "/health")[1])["batches"]
    sender = threading.Thread(target=send_big)
    sender.start()
    while json.loads(get(base, "/health")[1])["batches"] == before:  # its first batch is done
        assert sender.is_alive(), "the big request was answered before a batch was seen"
    assert predict(base, ["a good film"])[0] == 200
    finished.append("small")
    sender.join(60)
    assert finished == ["small", "big"]
    assert json.loads(get(base, "/health")[1])["batches"] - before > 100


def test_a_short_soak_has_no_errors_and_no_wrong_answers(tiny_server, tiny_model):
    texts = [f"{text} {i}" for i, text in enumerate(POSITIVE + NEGATIVE)]
    labels = reference(tiny_model, "auto", texts)
    request = soak_request(tiny_server, texts, labels, Limits(**TINY_LIMITS))
    cases = len(malformed(texts, Limits(**TINY_LIMITS)))
    _, outcomes = drive(tiny_server, 4, 600, cases * MALFORMED_EVERY, request)
    assert set(outcomes) == {"ok", "malformed: as expected"}
    assert len(outcomes["malformed: as expected"]) == cases


def test_a_request_over_its_token_budget_is_refused_before_any_work(tiny_model):
    from fastapi.testclient import TestClient

    from pipeline.serving.serve import create_app

    texts = ["a good film " * 10] * 4  # 120 characters: 32 tokens each, guessed
    with TestClient(create_app(tiny_model, Limits(max_tokens=100))) as client:
        fits = client.post("/predict", json={"texts": texts[:3]})
        over = client.post("/predict", json={"texts": texts})
    assert fits.status_code == 200 and len(fits.json()["results"]) == 3
    assert over.status_code == 413
    assert over.json() == {"error": "about 128 tokens to read; at most 100 per request"}
