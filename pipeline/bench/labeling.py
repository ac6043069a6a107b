"""How soon the labeling page's next text comes after an answer, on a large pool.

    python -m pipeline.bench.labeling --config configs/sst2-minilm.yaml \\
        --pool ../shared/data/sst2-glue/train.tsv --answers 100 --prelabeled 0,1000

Starts `make label`'s server (`python -m pipeline.labeling.app`) in its own process on the pool
(encoded once, cached), then plays a labeler over loopback HTTP with the pool's own labels:
GET /next, POST /label, GET /next, ... Each answer's latency is the time from sending POST
/label (answered once the answer is fsynced) to the end of the GET /next that follows: what a
person waits between pressing a key and seeing the next text. `--prelabeled` starts runs from an
OUT that already holds that many labeled texts (drawn at random), so the refit works on them.
Writes reports/bench/labeling.json and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import cli
from pipeline.config import load_config
from pipeline.io import write_json
from pipeline.pool import read_pool
from pipeline.report import REPORTS_ROOT

TARGET_MS = 100.0


class Client:
    """One keep-alive HTTP connection to the server, JSON in and out."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body)
        self.connection.request(method, path, data, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        answer = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {answer}")
        return answer


def start(args: argparse.Namespace, out: Path) -> tuple[subprocess.Popen, Client]:
    """The labeling server on a free port, answering."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "pipeline.labeling.app", "--config", args.config,
               "--pool", str(args.pool), "--out", str(out), "--labels", args.labels,
               "--port", str(port), "--strategy", args.strategy]  # fmt: skip
    process = subprocess.Popen(command, start_new_session=True, stdout=sys.stderr)
    deadline = time.time() + 1800  # the first run may encode the pool
    while time.time() < deadline:
        try:
            client = Client(port)
            client.call("GET", "/stats")
            return process, client
        except (OSError, http.client.HTTPException):
            if process.poll() is not None:
                raise SystemExit("the labeling server stopped") from None
            time.sleep(0.5)
    raise SystemExit("the labeling server did not start")


def run(args: argparse.Namespace, gold: dict[str, str], prelabeled: int) -> dict[str, Any]:
    """One labeler from `prelabeled` labels on: latency of each of `args.answers` answers."""
    folder = Path(tempfile.mkdtemp(prefix="bench-label-"))
    out = folder / "labels.csv"
    with open(out, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["sentence", "label"])
        writer.writerows(random.Random(0).sample(sorted(gold.items()), prelabeled))
    process, client = start(args, out)
    latencies, phases = [], []
    try:
        shown = client.call("GET", "/next")
        for _ in range(args.answers):
            began = time.perf_counter()
            client.call("POST", "/label", {"id": shown["id"], "label": gold[shown["text"]]})
            shown = client.call("GET", "/next")
            latencies.append(1000 * (time.perf_counter() - began))
            phases.append(client.call("GET", "/stats")["phase"])
        stats = client.call("GET", "/stats")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    ms = np.asarray(latencies)
    return {
        "prelabeled": prelabeled,
        "answers": len(ms),
        "median_ms": round(float(np.median(ms)), 1),
        "p90_ms": round(float(np.percentile(ms, 90)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
        "within_target": float((ms <= TARGET_MS).mean()),
        "diversity_start_answers": phases.count("diversity start"),
        "refits": stats["refits"],
        "last_refit_ms": stats["refit_ms"],
        "stale_picks": stats["stale_picks"],
        "latencies_ms": [round(v, 2) for v in latencies],
    }


def main() -> None:
    """Command line: the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="configs/sst2-minilm.yaml")
    parser.add_argument("--pool", type=Path, default=Path("../shared/data/sst2-glue/train.tsv"))
    parser.add_argument("--labels", default="negative,positive")
    parser.add_argument("--strategy", default="badge")
    parser.add_argument("--answers", type=int, default=100)
    parser.add_argument("--prelabeled", default="0,1000", help="comma-separated starts")
    args = parser.parse_args()
    names = args.labels.split(",")
    config = load_config(args.config, [f"data.labels=[{args.labels}]"])
    split = read_pool(args.pool, config, with_labels=True)
    gold = {text: names[k] for text, k in zip(split.texts, split.labels, strict=True)}
    runs = [run(args, gold, int(n)) for n in args.prelabeled.split(",")]
    result = {
        "pool": str(args.pool),
        "pool_texts": len(gold),
        "config": args.config,
        "strategy": args.strategy,
        "cpus": len(os.sched_getaffinity(0)),
        "machine": platform.machine(),
        "target_ms": TARGET_MS,
        "runs": runs,
    }
    write_json(REPORTS_ROOT / "bench" / "labeling.json", result)
    print(f"| from labels | answers | median | p90 | p99 | max | <= {TARGET_MS:.0f} ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(
            f"| {r['prelabeled']:,} | {r['answers']} | {r['median_ms']} ms | {r['p90_ms']} ms "
            f"| {r['p99_ms']} ms | {r['max_ms']} ms | {100 * r['within_target']:.0f} % |"
        )


if __name__ == "__main__":
    cli.run(main)
