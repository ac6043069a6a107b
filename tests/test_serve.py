"""The HTTP service over real HTTP on a loopback port: answers, limits, batching, failures."""

import dataclasses
import json
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import NEGATIVE, POSITIVE, TINY_LIMITS

from pipeline import classifier, explain
from pipeline.bench.battery import JSON, Case, bad_requests, connect, hang_up, mixed, send
from pipeline.bench.explain_latency import explain_latency, report
from pipeline.bench.serving import drive
from pipeline.bench.soak import MALFORMED_EVERY, malformed, reference, soak_request
from pipeline.classifier import Classifier
from pipeline.serving.failures import INTERNAL
from pipeline.serving.serve import Limits, explain_cost, token_guess

ROUTES = ["/predict", "/explain"]


def predict(base: str, texts: list[str], path: str = "/predict") -> tuple[int, dict]:
    return send(base, Case("good", 200, json.dumps({"texts": texts}).encode(), path=path))


def post_body(
    base: str, body: bytes, path: str = "/predict", kind: str = JSON
) -> tuple[int, str, dict]:
    """POST `body` to `path` on a new connection: status, X-Request-ID and parsed answer."""
    conn = connect(base)
    try:
        conn.request("POST", path, body, {"Content-Type": kind})
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


def all_at_once(
    base: str, bodies: list[bytes], path: str = "/predict"
) -> list[tuple[int, str, dict]]:
    """Send every body at the same time (they meet in batches: TINY_LIMITS' window is long)."""
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: post_body(base, body, path), bodies))


def assert_same_row(got: dict, want: dict) -> None:
    """`got` is `want` (a row of `results` or `explain`) up to float rounding (batches differ)."""
    assert got.keys() == want.keys() and got.get("label") == want.get("label")
    if "label" not in want:
        assert got == want
        return
    assert got["probability"] == pytest.approx(want["probability"], abs=1e-5)
    if "words" not in want:
        return
    spans = [{k: v for k, v in word.items() if k != "weight"} for word in got["words"]]
    assert spans == [{k: v for k, v in word.items() if k != "weight"} for word in want["words"]]
    weights = [word["weight"] for word in got["words"]]
    assert weights == pytest.approx([word["weight"] for word in want["words"]], abs=1e-4)


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


def test_explain_answers_each_text_as_the_classifier_explains_it(tiny_server, tiny_model):
    texts = ["a good film , i loved it", "", "\ud800 x", "a 😀 great \U0001d4b3 film", "awful"]
    status, answer = predict(tiny_server, texts, "/explain")
    expected = Classifier.load(tiny_model).explain(texts)
    assert status == 200 and len(answer["results"]) == len(texts)
    for got, want in zip(answer["results"], expected, strict=True):
        assert_same_row(got, want)
    assert [word["word"] for word in answer["results"][3]["words"]][:3] == ["a", "😀", "great"]
    assert answer["results"][3]["words"][1] | {"weight": 0} == {
        "word": "😀", "start": 2, "end": 3, "weight": 0  # code points, as Python counts
    }  # fmt: skip
    assert predict(tiny_server, [], "/explain") == (200, {"results": []})
    health = json.loads(get(tiny_server, "/health")[1])
    assert health["explained"]["texts"] == len(texts) and health["texts"] == 0


def test_the_explain_bench_times_both_ways(tiny_server, tiny_model):
    result = explain_latency(tiny_server, Classifier.load(tiny_model), "a good film", 2, 3)
    assert result["words"] == 3 and result["calls"] == 6
    assert 0 < result["in_process"]["p50_ms"] <= result["in_process"]["p99_ms"]
    assert "| POST /explain |" in report(result) and "10 ms target" in report(result)


def test_bad_texts_among_good_ones_at_explain_get_their_own_answers(tiny_server, tiny_model):
    """Sent together: good texts get their explanations, bad texts their error rows, bad bodies
    their 4xx, each answer its own request id."""
    good = [f"{text} {i}" for i, text in enumerate(POSITIVE[:6])]
    bad = {
        b'{"texts": [""]}': 200,  # an empty text: its error row
        b'{"texts": ["\\ud800 x"]}': 200,  # an unpaired surrogate: its error row, escaped
        json.dumps({"texts": ["a" * 201]}).encode(): 413,
        b'{"texts": "a good film"}': 422,
        b'{"texts": ["a good film"': 400,
    }
    bodies = [json.dumps({"texts": [text]}).encode() for text in good] + list(bad)
    answers = all_at_once(tiny_server, bodies, "/explain")
    answers.append(post_body(tiny_server, bodies[0], "/explain", "text/plain"))
    statuses = [status for status, _, _ in answers]
    assert statuses == [200] * len(good) + list(bad.values()) + [415]
    expected = Classifier.load(tiny_model).explain(good)
    for (_, _, answer), want in zip(answers, expected, strict=False):
        assert_same_row(answer["results"][0], want)
    errors = [answer for _, _, answer in answers[len(good) :]]
    assert errors[0] == {"results": [{"text": "", "error": "empty text"}]}
    assert errors[1]["results"][0]["text"] == "\\ud800 x"
    assert errors[1]["results"][0]["error"].startswith("not valid Unicode")
    assert all(list(answer) == ["error"] for answer in errors[2:])
    ids = [request_id for _, request_id, _ in answers]
    assert len(set(ids)) == len(ids) and all(len(request_id) == 16 for request_id in ids)


def test_health_model_docs_and_page(tiny_server, tiny_model):
    assert json.loads(get(tiny_server, "/health")[1])["status"] == "ok"
    assert json.loads(get(tiny_server, "/model")[1]) == json.loads(
        (tiny_model / "model.json").read_text()
    )
    schema = json.loads(get(tiny_server, "/openapi.json")[1])
    assert {"/predict", "/explain", "/health", "/model"} <= set(schema["paths"])
    assert {"200", "400", "413", "415", "422"} <= set(
        schema["paths"]["/explain"]["post"]["responses"]
    )
    word = schema["components"]["schemas"]["Word"]
    assert set(word["properties"]) == {"word", "start", "end", "weight", "weights"}
    assert schema["components"]["schemas"]["Explained"]["properties"]["words"]
    assert "swagger-ui" in get(tiny_server, "/docs")[1]
    assert get(tiny_server, "/static-offline-docs/swagger-ui.css")[0].startswith("text/css")
    kind, page = get(tiny_server, "/")
    assert kind.startswith("text/html") and 'id="texts"' in page


@pytest.mark.parametrize("path", ROUTES)
def test_every_bad_request_gets_its_4xx_json_error_and_the_server_goes_on(tiny_server, path):
    cases = [
        dataclasses.replace(case, path=path) if case.path == "/predict" else case
        for case in bad_requests(Limits(**TINY_LIMITS))
    ]
    answers = {case.name: send(tiny_server, case) for case in cases}
    assert {name: status for name, (status, _) in answers.items()} == {
        case.name: case.status for case in cases
    }
    for _, answer in answers.values():
        assert list(answer) == ["error"] and "Traceback" not in answer["error"]
    assert "at most 8" in answers["9 texts"][1]["error"]
    assert "application/json" in answers["Content-Type: text/plain"][1]["error"]
    hang_up(tiny_server)
    assert predict(tiny_server, ["a good film"], path)[0] == 200


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


@pytest.mark.parametrize("path", ROUTES)
def test_a_text_that_breaks_labeling_fails_only_its_own_request(
    tiny_server, monkeypatch, caplog, path
):
    rows = classifier.result_rows  # called with the texts, after they are encoded

    def breaking(texts, *args):
        if any("poison" in text for text in texts):
            raise RuntimeError("poison")
        return rows(texts, *args)

    good = [f"{text} {i}" for i, text in enumerate(POSITIVE + NEGATIVE + POSITIVE)]
    alone = {text: predict(tiny_server, [text], path)[1]["results"][0] for text in good}
    monkeypatch.setattr(classifier, "result_rows", breaking)
    monkeypatch.setattr(explain, "result_rows", breaking)
    bodies = [json.dumps({"texts": [text]}).encode() for text in good]
    for i in (4, 15, 26):
        bodies.insert(i, json.dumps({"texts": ["a good film", f"poison {i}"]}).encode())
    answers = all_at_once(tiny_server, bodies, path)
    poisoned = [answer for body, answer in zip(bodies, answers, strict=True) if b"poison" in body]
    assert [(status, answer) for status, _, answer in poisoned] == [(500, {"error": INTERNAL})] * 3
    for status, _, answer in answers:
        if status == 200:
            (row,) = answer["results"]
            assert_same_row(row, alone[row["text"]])
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


def test_the_model_loads_labels_and_explains_on_one_thread_not_the_main_one(
    tiny_model, monkeypatch, request
):
    threads = {"load": set(), "results": set(), "explain": set()}
    load, results, explains = Classifier.load.__func__, Classifier.results, Classifier.explain

    def recorded(name, method):
        def call(*args, **kwargs):
            threads[name].add(threading.get_ident())
            return method(*args, **kwargs)

        return call

    monkeypatch.setattr(Classifier, "load", classmethod(recorded("load", load)))
    monkeypatch.setattr(Classifier, "results", recorded("results", results))
    monkeypatch.setattr(Classifier, "explain", recorded("explain", explains))
    base = request.getfixturevalue("tiny_server")  # the server starts after the patches
    assert predict(base, ["a good film"])[0] == predict(base, ["a good film"], "/explain")[0] == 200
    assert len(threads["load"]) == 1 and threads["load"] == threads["results"] == threads["explain"]
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
    explains = explain_cost(truncates)  # its tokens times ~4 half-length variants a token (<= 100)
    assert (explains("a good film"), explains("x" * 5000)) == (4 * 16 // 2, 128 * 100 // 2)


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
