"""The HTTP side of the service benchmark: a small client, and every bad request we know of.

`bad_requests` is the battery `pipeline.bench.serving` reports and `tests/test_serve.py` asserts:
each case with the status code the server must answer it with.
"""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.client import HTTPConnection
from typing import Any

from pipeline.serving.serve import Limits

JSON = "application/json"


@dataclass(frozen=True)
class Case:
    """One request of the battery, and the status code the server must answer it with."""

    name: str
    status: int
    body: bytes | list[bytes] = b""  # a list is sent in chunks, without Content-Length
    content_type: str | None = JSON
    method: str = "POST"
    path: str = "/predict"


def bad_requests(limits: Limits) -> list[Case]:
    """Every kind of bad request we know of, sized to `limits`."""

    def texts(*items: object) -> bytes:
        return json.dumps({"texts": list(items)}).encode()

    depth, many, chars = limits.max_body_bytes // 2 - 16, limits.max_texts + 1, limits.max_chars
    body, form = limits.max_body_bytes + 1, "application/x-www-form-urlencoded"
    return [
        Case("body is not JSON", 400, b'{"texts": ["a good film"'),
        Case("empty body", 400),
        Case("body is not UTF-8", 400, b'{"texts": ["caf\xe9"]}'),
        Case(f"JSON nested {depth:,} deep", 400, b"[" * depth + b"]" * depth),
        Case("an integer of 5,000 digits", 400, b'{"texts": [' + b"1" * 5000 + b"]}"),
        Case("body is a list, not an object", 422, b'["a good film"]'),
        Case("no `texts` key", 422, b'{"text": ["a good film"]}'),
        Case("texts is one string", 422, b'{"texts": "a good film"}'),
        Case("texts is null", 422, b'{"texts": null}'),
        Case("a text is a number", 422, texts("a good film", 3)),
        Case("an unknown key", 422, b'{"texts": ["a good film"], "lang": "en"}'),
        Case(f"{many} texts", 413, texts(*["ok"] * many)),
        Case(f"a text of {chars + 1:,} characters", 413, texts("a" * (chars + 1))),
        Case(f"a body of {body:,} bytes", 413, b" " * body),
        Case("the same, chunked (no Content-Length)", 413, [b" " * 65536] * (body // 65536 + 1)),
        Case("Content-Type: text/plain", 415, texts("a good film"), "text/plain"),
        Case("form-encoded (curl -d without -H)", 415, texts("a good film"), form),
        Case("unknown route", 404, method="GET", path="/nope", content_type=None),
        Case("GET /predict", 405, method="GET", content_type=None),
        Case("DELETE /model", 405, method="DELETE", path="/model", content_type=None),
    ]


def connect(base: str) -> HTTPConnection:
    """A connection to the server at `base` (http://host:port)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    return HTTPConnection(host, int(port), timeout=60)


def post(conn: HTTPConnection, texts: list[str]) -> tuple[int, Any]:
    """POST /predict with `texts` on `conn`; (status, parsed JSON)."""
    conn.request("POST", "/predict", json.dumps({"texts": texts}), {"Content-Type": JSON})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def send(base: str, request: Case) -> tuple[int, Any]:
    """Send `request` on a new connection; (status, parsed JSON)."""
    conn = connect(base)
    headers = {"Content-Type": request.content_type} if request.content_type else {}
    try:
        conn.request(request.method, request.path, request.body or None, headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def health(base: str) -> dict[str, int]:
    """How many batches and texts the server has labeled so far (GET /health)."""
    with urllib.request.urlopen(f"{base}/health", timeout=10) as answer:
        counts = json.load(answer)
    return {key: counts[key] for key in ("batches", "texts")}


def hang_up(base: str) -> None:
    """A client that announces a body, sends part of it and goes away."""
    conn = connect(base)
    conn.putrequest("POST", "/predict")
    conn.putheader("Content-Length", "1000")
    conn.endheaders(b'{"texts": ["a go')
    conn.close()


def mixed(base: str, cases: list[Case], texts: list[str]) -> dict[str, int]:
    """The battery again, all at once with 32 good requests among it: how many got their code."""
    jobs = cases + [Case("good", 200, json.dumps({"texts": [t]}).encode()) for t in texts[:32]]
    with ThreadPoolExecutor(16) as pool:
        right = pool.map(lambda job: send(base, job)[0] == job.status, jobs)
        return {"requests": len(jobs), "as_expected": sum(right)}
