"""Soak the HTTP service: many clients for a long while, some of them sending malformed requests.

    python -m pipeline.bench.soak --model models/alammar-2000-minilm \\
        --data ../shared/data/sst2-sentences/dev.tsv --seconds 600 --clients 32

Labels each sentence of --data alone with the classifier (the reference), then starts `python -m
pipeline.serving.serve` on a free port of 127.0.0.1 (as `pipeline.bench.serving` does) and runs
--clients clients for --seconds. One request in 20 is malformed: in turn each case of the
bad-request battery (`pipeline.bench.battery`) and bodies whose bad texts (unpaired surrogates,
empty, zero-width, control characters) sit among good ones; the others carry one sentence. Every
good text's answer is checked against the reference label. Prints Markdown: errors, wrong
answers, malformed requests not answered as they should be, p50/p99, texts/s, and the server's
RSS at the start, after the first minute and at the end (the target: flat within ±10 % after the
first minute). Not part of `make test`; results: docs/serving.md.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from pipeline import cli
from pipeline.bench.battery import Case, bad_requests, connect, post, send
from pipeline.bench.serving import (
    cpu_s,
    drive,
    load_parser,
    percentiles,
    rss_mib,
    server_options,
    start_server,
)
from pipeline.classifier import Classifier
from pipeline.data.splits import read_split
from pipeline.serving.serve import Limits

MALFORMED_EVERY = 20  # one request in 20 (5 %)
BAD_TEXTS = [
    ["\ud800", "x \udfff y", "\udc80\ud800"],  # unpaired surrogates (valid JSON escapes)
    ["", "   ", "\t\n", "\u200b\u200b", "\ufeff\u2060"],  # empty, blank, zero-width
    ["\x00", "\x1b\x07\x7f", "\u202e\u2066", "\u0301"],  # control, bidi overrides, a lone accent
]
RSS_EVERY_S = 5.0


def reference(model: Path, engine: str, texts: list[str]) -> dict[str, dict[str, Any]]:
    """Each distinct text's row when the classifier labels it alone."""
    classifier = Classifier.load(model, engine)
    if classifier.engine == "torch":  # one text a call: a second thread would only wait (spinning
        import torch  # on a busy machine, 8x slower); imported only for the torch engine

        torch.set_num_threads(1)
    return {text: classifier.results([text])[0] for text in dict.fromkeys(texts)}


def malformed(texts: list[str], limits: Limits) -> list[tuple[Case, list[str | None] | None]]:
    """The malformed requests for a server with `limits`, each with the good texts its rows must
    label (None in the place of a bad text; None for all: the status is all that is checked)."""
    cases: list[tuple[Case, list[str | None] | None]] = [
        (case, None) for case in bad_requests(limits)
    ]
    for i, bad in enumerate(BAD_TEXTS):
        mix = [texts[i], *bad, texts[-1 - i]]
        body = json.dumps({"texts": mix}).encode()
        cases.append((Case(f"bad texts {i}", 200, body), [texts[i], *[None] * len(bad), mix[-1]]))
    return cases


def soak_request(
    base: str, texts: list[str], labels: dict[str, dict[str, Any]], limits: Limits
) -> Callable[[HTTPConnection, int], str]:
    """The soak's requests to the server at `base` (with `limits`), for `drive`: `labels` are
    the reference rows of `reference`."""
    cases = malformed(texts, limits)

    def request(conn: HTTPConnection, i: int) -> str:
        if i % MALFORMED_EVERY:
            text = texts[i % len(texts)]
            status, answer = post(conn, [text])
            if status != 200:
                return f"error (HTTP {status})"
            same = answer["results"][0].get("label") == labels[text].get("label")
            return "ok" if same else "wrong"
        case, expected = cases[i // MALFORMED_EVERY % len(cases)]
        conn.close()  # `conn` would idle meanwhile, and the server may close an idle connection
        try:
            status, answer = send(base, case)  # a connection of its own
        except (OSError, ValueError):
            return "malformed: no answer"
        if status >= 500:
            return "malformed: 5xx"
        if status != case.status:
            return "malformed: other status"
        if expected is not None:
            got = [row.get("label") for row in answer["results"]]
            want = [labels[text].get("label") if text else None for text in expected]
            return "malformed: as expected" if got == want else "wrong"
        return "malformed: as expected"

    return request


def sample_rss(pid: int, stop: threading.Event) -> list[tuple[float, float]]:
    """(seconds since the start, RSS in MiB) every RSS_EVERY_S until `stop` is set; the list
    fills while the sampling thread runs."""
    samples: list[tuple[float, float]] = []
    started = time.perf_counter()

    def run() -> None:
        while not stop.wait(RSS_EVERY_S):
            samples.append((time.perf_counter() - started, rss_mib(pid)["VmRSS"]))

    threading.Thread(target=run, daemon=True).start()
    return samples


def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run the soak of the module docstring; its numbers."""
    texts = read_split(args.data).texts
    labels = reference(args.model, args.engine, texts)
    server, base = start_server(args.model, server_options(args))
    try:
        post(connect(base), texts[:8])  # warm
        rss_start, stop = rss_mib(server.pid)["VmRSS"], threading.Event()
        processes = {"machine": None, "clients": os.getpid(), "server": server.pid}
        before = {name: cpu_s(pid) for name, pid in processes.items()}
        samples = sample_rss(server.pid, stop)
        request = soak_request(base, texts, labels, Limits())
        elapsed, outcomes = drive(base, args.clients, args.seconds, 10**9, request)
        stop.set()
        cores = {name: (cpu_s(pid) - before[name]) / elapsed for name, pid in processes.items()}
        rss_end = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    ok, settle = outcomes.get("ok", []), min(60.0, args.seconds / 2)
    after = [rss for at, rss in samples if at >= settle] + [rss_end["VmRSS"]]
    return {
        "seconds": elapsed,
        "clients": args.clients,
        "outcomes": {name: len(latencies) for name, latencies in sorted(outcomes.items())},
        "texts_per_s": len(ok) / elapsed,
        **percentiles(ok),
        "rss_start": rss_start,
        "settle_s": settle,
        "rss_settled": after[0],
        "rss_range": (min(after), max(after)),
        "rss_end": rss_end["VmRSS"],
        "rss_peak": rss_end["VmHWM"],
        "cores": {**cores, "others": cores["machine"] - cores["clients"] - cores["server"]},
    }


def report(r: dict[str, Any]) -> str:
    """The soak's numbers as Markdown."""
    counts, (low, high), settled = r["outcomes"], r["rss_range"], r["rss_settled"]
    bad = sum(n for name, n in counts.items() if name.startswith("malformed"))
    good = sum(counts.values()) - bad
    cores = r["cores"]
    lines = [
        f"{r['clients']} clients for {r['seconds']:.0f} s: {good + bad} requests, {bad} malformed.",
        "",
        "| outcome | requests |",
        "|---|---|",
        *(f"| {name} | {n} |" for name, n in counts.items()),
        "",
        f"| texts/s | p50 | p99 | RSS start | RSS at {r['settle_s']:.0f} s | RSS end "
        f"| RSS after {r['settle_s']:.0f} s | peak RSS | CPU: server, clients, others |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {r['texts_per_s']:.1f} | {r['p50_ms']:.0f} ms | {r['p99_ms']:.0f} ms "
        f"| {r['rss_start']:.0f} MiB | {settled:.0f} MiB | {r['rss_end']:.0f} MiB "
        f"| {low / settled - 1:+.1%} to {high / settled - 1:+.1%} | {r['rss_peak']:.0f} MiB "
        f"| {cores['server']:.2f}, {cores['clients']:.2f}, {cores['others']:.2f} cores |",
    ]
    return "\n".join(lines)


def main() -> None:
    """Command line: run the soak, print its numbers as Markdown."""
    print(report(soak(load_parser(__doc__, 600.0).parse_args())))


if __name__ == "__main__":
    cli.run(main)
