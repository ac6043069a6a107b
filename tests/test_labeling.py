"""make label: answers on disk before the next text, resume without asking twice, undo, the API's
4xx answers, kill -9 of the server, and the page in a real headless Chromium."""

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import NEGATIVE, POSITIVE, ROOT, sentences
from fastapi.testclient import TestClient

from pipeline import PipelineError
from pipeline.config import load_config
from pipeline.data.splits import load_splits
from pipeline.labeling.app import create_app, parse_labels
from pipeline.labeling.journal import Journal
from pipeline.labeling.session import Session
from pipeline.pool import Pool, read_answers

NAMES = ["negative", "positive"]


def synthetic_pool(n: int = 60) -> Pool:
    """Texts whose vectors carry their sentiment (no encoder needed)."""
    rng = np.random.default_rng(0)
    texts = [f"{'good' if i % 2 else 'bad'} text {i}" for i in range(n)]
    x = rng.normal(size=(n, 8)).astype(np.float32)
    x[:, 0] += np.where(np.arange(n) % 2, 2.0, -2.0)
    return Pool(texts, x, "synthetic")


def truth(text: str) -> str:
    return "positive" if text.startswith("good") or text in POSITIVE else "negative"


@pytest.fixture
def session(tmp_path):
    made = []

    def start(out="out.csv", strategy="badge", pool=None):
        journal = Journal(tmp_path / out, NAMES)
        one = Session(pool or synthetic_pool(), NAMES, journal, load_config(None), strategy)
        made.append(one)
        return one

    yield start
    for one in made:
        one.close()


def answer(client, label=None):
    text = client.get("/next").json()
    response = client.post("/label", json={"id": text["id"], "label": label or truth(text["text"])})
    assert response.status_code == 200, response.text
    return text


def test_answers_are_on_disk_resume_asks_nothing_twice_and_undo_takes_back(session, tmp_path):
    client = TestClient(create_app(session()))
    asked = [answer(client)["text"] for _ in range(8)]
    skipped = answer(client, "skip")["text"]
    rows = read_answers(tmp_path / "out.csv", NAMES)
    assert rows.texts == asked and [NAMES[k] for k in rows.labels] == list(map(truth, asked))
    assert json.loads((tmp_path / "out.csv.skipped.jsonl").read_text()) == {
        "text": skipped,
        "after": 8,
    }
    stats = client.get("/stats").json()
    assert (stats["labeled"], stats["skipped"], stats["remaining"]) == (8, 1, 51)
    assert sum(stats["counts"].values()) == 8

    again = TestClient(create_app(session()))  # a restart on the same OUT
    later = [answer(again)["text"] for _ in range(10)]
    assert not set(later) & {*asked, skipped}
    assert again.post("/undo").json()["text"] == later[-1]  # the last answer comes back next
    assert again.get("/next").json()["text"] == later[-1]
    assert read_answers(tmp_path / "out.csv", NAMES).texts == asked + later[:-1]

    third = TestClient(create_app(session()))  # undo after a restart: a skip, then a label
    answer(third, "skip")
    assert third.post("/undo").json()["label"] == "skip"
    assert third.post("/undo").json()["text"] == later[-2]


def test_the_classifier_refits_and_the_progress_has_cv_accuracy_and_a_curve(session):
    one = session()
    client = TestClient(create_app(one))
    first = client.get("/next").json()
    assert first["guess"] is None and first["probabilities"] is None
    assert client.get("/stats").json()["phase"] == "diversity start"
    for _ in range(24):
        answer(client)
    deadline = time.time() + 60
    while time.time() < deadline and not client.get("/stats").json()["cv"]:
        time.sleep(0.1)
    stats = client.get("/stats").json()
    assert stats["phase"] == "badge" and stats["refits"] >= 1
    assert (
        stats["cv"]["n"] == 24
        and stats["cv"]["low"] <= stats["cv"]["accuracy"] <= stats["cv"]["high"]
    )
    assert stats["cv"]["accuracy"] > 0.8  # the synthetic pool is easy
    nxt = client.get("/next").json()
    assert nxt["guess"] in NAMES and sum(nxt["probabilities"].values()) == pytest.approx(1.0)

    def curve():
        return {point["n"] for point in client.get("/stats").json()["curve"]}

    deadline = time.time() + 60
    while time.time() < deadline and not {10, 20, 24} <= curve():  # the prefixes of OUT too
        time.sleep(0.1)
    assert {10, 20, 24} <= curve()


def test_the_next_diversity_round_is_grouped_by_the_worker_before_it_is_needed(session):
    one = session()  # answering "negative" to everything keeps the session in its diversity start
    client = TestClient(create_app(one))
    first_round = list(one.start)
    for _ in range(len(first_round) - 1):
        answer(client, "negative")
    deadline = time.time() + 60
    while time.time() < deadline and len([r for r in one.start if not one.taken[r]]) < 2:
        time.sleep(0.05)
    waiting = [row for row in one.start if not one.taken[row]]
    assert len(waiting) > 1 and set(waiting) - set(first_round)  # the next round, before /next
    asked = [answer(client, "negative")["id"] for _ in range(len(waiting))]
    assert asked == waiting and not set(asked) & set(first_round[:-1])


def test_bad_requests_get_the_services_4xx_answers(session):
    client = TestClient(create_app(session()))
    current = client.get("/next").json()["id"]
    bad = [
        (b"not json", "application/json", 400),
        (json.dumps({"id": current}).encode(), "application/json", 422),
        (json.dumps({"id": str(current), "label": "positive"}).encode(), "application/json", 422),
        (json.dumps({"id": current, "label": "neutral"}).encode(), "application/json", 422),
        (json.dumps({"id": 10_000, "label": "positive"}).encode(), "application/json", 404),
        (
            json.dumps({"id": (current + 1) % 60, "label": "positive"}).encode(),
            "application/json",
            409,
        ),
        (json.dumps({"id": current, "label": "positive"}).encode(), "text/plain", 415),
        (b"{" + b" " * 5000 + b"}", "application/json", 413),
        (b"\xff\xfe", "application/json", 400),
    ]
    for body, kind, code in bad:
        response = client.post("/label", content=body, headers={"Content-Type": kind})
        assert response.status_code == code, (body[:40], response.text)
        assert "error" in response.json()
    assert client.post("/undo").status_code == 409  # nothing to undo
    assert client.post("/label", json={"id": current, "label": "positive"}).status_code == 200
    again = client.post("/label", json={"id": current, "label": "positive"})
    assert again.status_code == 409 and "already answered" in again.json()["error"]
    assert set(client.get("/openapi.json").json()["paths"]) == {
        "/next",
        "/label",
        "/undo",
        "/stats",
    }


def test_out_is_training_data_and_torn_or_foreign_files_are_handled(session, tmp_path):
    for name in ("train.csv", "train.jsonl", "train.tsv"):
        folder = tmp_path / name.split(".")[1]
        folder.mkdir()
        client = TestClient(create_app(session(f"{folder.name}/{name}")))
        for _ in range(12):
            answer(client)
        shutil.copy(tmp_path / folder.name / name, folder / name.replace("train", "dev"))
        config = load_config(None, [f"data.dir={folder}", "data.test_split=null"])
        splits = load_splits(config.data)
        assert len(splits["train"]) == 12 and splits["train"].names == NAMES
    out = tmp_path / "csv" / "train.csv"
    with open(out, "ab") as handle:
        handle.write(b'"a torn la')  # a power cut in the middle of a write
    one = session("csv/train.csv")
    assert one.stats()["labeled"] == 12 and out.read_bytes().endswith(b"\n")
    (tmp_path / "other.csv").write_text("label,sentence\npositive,x\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="not the header"):
        session("other.csv")
    with pytest.raises(PipelineError, match="give two or more distinct names"):
        parse_labels("positive,skip")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(base, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def start_server(tiny_config, workdir, pool, out):
    """`python -m pipeline.labeling.app` in its own process group; wait until it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.labeling.app", "--config", str(tiny_config),
         "--pool", str(pool), "--out", str(out), "--labels", "negative,positive",
         "--port", str(port)],
        cwd=workdir, env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 240
    while time.time() < deadline:
        if process.poll() is not None:
            pytest.fail(process.stdout.read().decode())
        try:
            http(base, "/stats")
            return process, base
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    process.kill()
    pytest.fail("the labeling server did not start")


def test_kill_9_of_the_server_loses_no_answer_and_the_restart_asks_none_again(tiny_config, workdir):
    pool = workdir / "pool.txt"
    pool.write_text("\n".join(POSITIVE + NEGATIVE + sentences(30)) + "\n", encoding="utf-8")
    out = workdir / "labels.csv"
    process, base = start_server(tiny_config, workdir, pool, out)
    answered = []
    try:
        for i in range(12):
            text = http(base, "/next")
            label = "skip" if i in (4, 9) else truth(text["text"])
            http(base, "/label", {"id": text["id"], "label": label})
            answered.append((text["text"], label))
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the whole process group, between answers
        process.wait(timeout=30)
    data = out.read_bytes()
    assert data.endswith(b"\n")  # never half-written
    with open(out, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["sentence", "label"], *[[t, y] for t, y in answered if y != "skip"]]
    process, base = start_server(tiny_config, workdir, pool, out)
    try:
        stats = http(base, "/stats")
        assert (stats["labeled"], stats["skipped"]) == (10, 2)
        later = []
        for _ in range(20):
            text = http(base, "/next")
            http(base, "/label", {"id": text["id"], "label": truth(text["text"])})
            later.append(text["text"])
        assert not set(later) & {t for t, _ in answered} and len(set(later)) == 20
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="no chromium + chromedriver")
def test_the_page_in_a_real_browser_labels_with_keys_skips_and_undoes(session, tmp_path):
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    one = session()
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(one), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    wait = WebDriverWait(browser, 30)
    try:
        browser.get(f"http://127.0.0.1:{sock.getsockname()[1]}/")
        wait.until(
            lambda b: (
                b.find_element(By.ID, "text").text and b.find_elements(By.CLASS_NAME, "answer")
            )
        )
        names = [
            b.get_attribute("data-label") for b in browser.find_elements(By.CLASS_NAME, "answer")
        ]
        assert names == NAMES
        body = browser.find_element(By.TAG_NAME, "body")
        for i in range(14):  # keys 1..K label the text shown
            shown = browser.find_element(By.ID, "text").text
            body.send_keys("2" if truth(shown) == "positive" else "1")
            wait.until(
                lambda b, i=i, shown=shown: (
                    one.stats()["labeled"] == i + 1 and b.find_element(By.ID, "text").text != shown
                )
            )
        shown = browser.find_element(By.ID, "text").text
        browser.find_element(By.ID, "skip").click()
        wait.until(lambda b: one.stats()["skipped"] == 1)
        body.send_keys("u")  # undo the skip: the same text again
        wait.until(
            lambda b: one.stats()["skipped"] == 0 and b.find_element(By.ID, "text").text == shown
        )
        wait.until(lambda b: "guesses" in b.find_element(By.ID, "guess").text)
        wait.until(lambda b: "%" in b.find_element(By.ID, "accuracy").text)
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#curve polyline"))
        counts = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#counts td")]
        assert counts[0::2] == NAMES and sum(map(int, counts[1::2])) == 14
        texts = read_answers(tmp_path / "out.csv", NAMES).texts
        assert len(texts) == 14 and shown not in texts
    finally:
        browser.quit()
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
