"""Measure POST /explain against `Classifier.explain` in process, for one sentence.

    python -m pipeline.bench.explain_latency --model models/alammar-2000-minilm \\
        --data ../shared/data/sst2-glue/dev.tsv --blocks 5 --per-block 10

Starts `python -m pipeline.serving.serve` on a free loopback port (as `pipeline.bench.serving`
does) and loads the same classifier here, on the same engine and threads; then times one sentence
(--sentence, or the --data sentence of median length) both ways, in alternating blocks of
--per-block calls, and prints the p50 and p99 of each and their difference as a Markdown table.
The target: a p50 of POST /explain within 10 ms of the in-process one (the HTTP round trip, JSON
and the batching window are all the server may add).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from contextlib import closing
from functools import partial
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from pipeline import PipelineError, cli
from pipeline.bench.battery import JSON, connect
from pipeline.bench.serving import percentiles, server_options, start_server
from pipeline.classifier import ENGINES, Classifier
from pipeline.data.splits import read_split
from pipeline.io import usable_cpus
from pipeline.serving.serve import Limits

TARGET_MS = 10.0  # how much slower than in process POST /explain's p50 may be


def timed(call: Callable[[], object], n: int) -> list[float]:
    """The seconds each of `n` calls of `call` took."""
    seconds = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def post_explain(conn: HTTPConnection, body: str) -> None:
    """POST /explain with `body` on `conn`; an error unless its first row has words."""
    conn.request("POST", "/explain", body, {"Content-Type": JSON})
    response = conn.getresponse()
    if response.status != 200 or "words" not in json.loads(response.read())["results"][0]:
        raise PipelineError(f"POST /explain answered {response.status}")


def explain_latency(
    base: str, classifier: Classifier, text: str, blocks: int, per_block: int
) -> dict[str, Any]:
    """p50 and p99 of POST /explain for `text` and of `classifier.explain([text])` here, in
    `blocks` alternating blocks of `per_block` calls each: a drift in the machine's speed (other
    work on it) touches both alike. Each HTTP block has a kept-alive connection of its own (the
    server closes one left idle for 5 s); the first call each way warms up, untimed."""
    body, seconds = json.dumps({"texts": [text]}), {"http": [], "in_process": []}
    here = partial(classifier.explain, [text])
    with closing(connect(base)) as conn:
        post_explain(conn, body)
    here()
    for _ in range(blocks):
        with closing(connect(base)) as conn:
            seconds["http"] += timed(partial(post_explain, conn, body), per_block)
        seconds["in_process"] += timed(here, per_block)
    times = {name: percentiles(values) for name, values in seconds.items()}
    words = len(here()[0]["words"])
    return {"text": text, "words": words, "calls": blocks * per_block, **times}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """`explain_latency` of the sentence against a server started as `pipeline.bench.serving`
    starts it, the classifier here on the server's engine and threads."""
    texts = [args.sentence] if args.sentence else sorted(read_split(args.data).texts, key=len)
    os.environ["OMP_NUM_THREADS"] = str(args.threads or usable_cpus())  # as serve: before loading
    classifier = Classifier.load(args.model, args.engine)
    server, base = start_server(args.model, server_options(args))
    try:
        return explain_latency(
            base, classifier, texts[len(texts) // 2], args.blocks, args.per_block
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def report(r: dict[str, Any]) -> str:
    """The measurements as a Markdown table."""
    http, here = r["http"], r["in_process"]
    gap = http["p50_ms"] - here["p50_ms"]
    verdict = "within" if gap <= TARGET_MS else "over"
    return "\n".join(
        [
            f"One sentence of {r['words']} words, {r['calls']} calls each way: {r['text']!r}",
            "",
            "| explain | p50 | p99 |",
            "|---|---|---|",
            f"| POST /explain | {http['p50_ms']:.1f} ms | {http['p99_ms']:.1f} ms |",
            f"| in process | {here['p50_ms']:.1f} ms | {here['p99_ms']:.1f} ms |",
            f"| difference | {gap:+.1f} ms | {http['p99_ms'] - here['p99_ms']:+.1f} ms |",
            "",
            f"p50 difference {gap:+.1f} ms: {verdict} the {TARGET_MS:g} ms target.",
        ]
    )


def main() -> None:
    """Command line: measure, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="classifier folder")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--data", help="a split file: its sentence of median length is timed")
    which.add_argument("--sentence", help="the sentence to time")
    parser.add_argument("--engine", choices=ENGINES, default="auto", help="(as serve)")
    parser.add_argument(
        "--batch-window-ms", type=float, default=Limits.batch_window_s * 1000, help="(as serve)"
    )
    parser.add_argument("--threads", type=int, help="the encoder's threads, both ways (as serve)")
    parser.add_argument("--blocks", type=int, default=5, help="blocks each way (5)")
    parser.add_argument("--per-block", type=int, default=10, help="calls a block (10)")
    print(report(measure(parser.parse_args())))


if __name__ == "__main__":
    cli.run(main)
