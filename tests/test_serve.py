"""The HTTP service over real HTTP on a loopback port: answers, limits, batching, failures."""

import json
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import NEGATIVE, POSITIVE, TINY_LIMITS

from pipeline.bench.battery import Case, bad_requests, hang_up, mixed, send
from pipeline.serving import classifier
from pipeline.classifier import Classifier
from pipeline.serving.serve import Limits


def predict(base: str, texts: list[str]) -> tuple[int, dict]:
    return send(base, Case("good", 200, json.dumps({"texts": texts}).encode()))


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
    tiny_server, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(classifier, "embed", broken)
    status, answer = predict(tiny_server, ["a good film"])
    assert status == 500 and "secret" not in json.dumps(answer) and list(answer) == ["error"]
    monkeypatch.undo()
    assert predict(tiny_server, ["a good film"])[0] == 200


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
