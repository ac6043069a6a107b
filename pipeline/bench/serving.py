"""Measure the HTTP service: latency, throughput under load against the offline path, bad requests.

    python -m pipeline.bench.serving --model models/alammar-2000-minilm \\
        --data ../shared/data/sst2-glue/dev.tsv --seconds 60 --clients 32

In one session, on the same sentences (of --data) and the same encoder: 1. offline, the encoder
(on --engine) over all of them in this process (the features stage's path); 2. `python -m
pipeline.serving.serve` on a free port of 127.0.0.1 (loopback only): latency of one-sentence
requests one after another; 3. load: --clients clients posting --per-request sentences a request
until --seconds or --requests are up: texts/s, p50/p99, errors, the server's RSS before and after,
the CPU other processes took; 4. the bad-request battery, then all of it at once with good
requests; 5. offline again, after the server stopped (the ratio uses the mean of both). Prints
Markdown tables (docs/serving.md).
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from pipeline import PipelineError, cli
from pipeline.bench.battery import bad_requests, connect, hang_up, health, mixed, post, send
from pipeline.classifier import ENGINES, Classifier
from pipeline.data.splits import read_split
from pipeline.serving.serve import Limits


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50 and p99 in milliseconds."""
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return {"p50_ms": 1000 * cuts[49], "p99_ms": 1000 * cuts[98]}


def latency(base: str, texts: list[str], n: int) -> dict[str, float]:
    """`n` one-sentence requests one after another on one kept-alive connection."""
    conn, seconds = connect(base), []
    for text in itertools.islice(itertools.cycle(texts), n):
        started = time.perf_counter()
        if post(conn, [text])[0] != 200:
            raise PipelineError("a latency request failed")
        seconds.append(time.perf_counter() - started)
    conn.close()
    return {"requests": n, **percentiles(seconds)}


def drive(
    base: str, clients: int, seconds: float, cap: int, request: Callable[[HTTPConnection, int], str]
) -> tuple[float, dict[str, list[float]]]:
    """`clients` clients, each on its own kept-alive connection, calling `request(conn, i)` for
    i = 0, 1, ... (shared) until `seconds` or `cap` requests: the seconds it took, and the
    latencies of each outcome (what `request` returned; "error (<exception>)" when it raised)."""
    numbers, outcomes = itertools.count(), defaultdict(list)
    started = time.perf_counter()

    def client(_: int) -> None:
        conn = connect(base)
        while time.perf_counter() - started < seconds and (i := next(numbers)) < cap:
            sent = time.perf_counter()
            try:
                outcome = request(conn, i)
            except (OSError, ValueError, KeyError) as err:
                conn.close()  # the next request opens a new connection
                outcome = f"error ({type(err).__name__})"
            outcomes[outcome].append(time.perf_counter() - sent)
        conn.close()

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return time.perf_counter() - started, dict(outcomes)


def load(base: str, texts: list[str], clients: int, seconds: float, cap: int, per: int = 1) -> dict:
    """`clients` clients posting `per` sentences a request until `seconds` or `cap` requests."""

    def request(conn: HTTPConnection, i: int) -> str:
        batch = [texts[(i * per + j) % len(texts)] for j in range(per)]
        status, answer = post(conn, batch)
        good = status == 200 and [r["text"] for r in answer["results"]] == batch
        return "ok" if good else "error"

    elapsed, outcomes = drive(base, clients, seconds, cap, request)
    ok = outcomes.get("ok", [])
    errors = sum(len(latencies) for outcome, latencies in outcomes.items() if outcome != "ok")
    return {
        "clients": clients,
        "per_request": per,
        "seconds": elapsed,
        "errors": errors,
        "requests": len(ok) + errors,
        "texts_per_s": len(ok) * per / elapsed,
        **percentiles(ok),
    }


def cpu_s(pid: int | None = None) -> float:
    """CPU seconds used so far by the whole machine (no `pid`) or by one process (Linux /proc)."""
    if pid is None:
        return sum(map(int, Path("/proc/stat").read_text().split()[1:4])) / os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> dict[str, float]:
    """A process's resident memory now and at its peak, in MiB (Linux /proc)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


def offline(classifier_dir: Path, texts: list[str], chunk: int, engine: str) -> dict[str, float]:
    """Texts/s of the classifier's encoder on `engine`: over all `texts` in one call, and in
    calls of `chunk` texts (the most that `chunk` one-sentence clients can get), warmed up first."""
    encoder = Classifier.load(classifier_dir, engine).encoder
    encoder.encode(texts[:64])
    rates = {}
    for name, size in (("all", len(texts)), ("chunks", chunk)):
        started = time.perf_counter()
        for start in range(0, len(texts), size):
            encoder.encode(texts[start : start + size])
        rates[name] = len(texts) / (time.perf_counter() - started)
    return rates


def start_server(model: Path, options: list[str]) -> tuple[subprocess.Popen, str]:
    """`python -m pipeline.serving.serve` with `options` on a free loopback port, once /health
    answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "pipeline.serving.serve", "--model", str(model)]
    server = subprocess.Popen([*command, "--port", str(port), *options])
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if server.poll() is not None:
            raise PipelineError(f"the server stopped with exit code {server.returncode}")
        try:
            health(base)
            return server, base
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise PipelineError("the server did not answer /health within 2 minutes")


def server_options(args: argparse.Namespace) -> list[str]:
    """The options of `serve` that `load_parser` took."""
    options = ["--engine", args.engine, "--batch-window-ms", str(args.batch_window_ms)]
    return options + (["--threads", str(args.threads)] if args.threads else [])


def load_parser(doc: str, seconds: float) -> argparse.ArgumentParser:
    """A command line with --model, --data, --clients, --seconds (default `seconds`) and the
    server's options (`server_options`)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="classifier folder")
    parser.add_argument("--data", required=True, help="a split file with a sentence column")
    parser.add_argument("--engine", choices=ENGINES, default="auto", help="(as serve)")
    parser.add_argument(
        "--batch-window-ms", type=float, default=Limits.batch_window_s * 1000, help="(as serve)"
    )
    parser.add_argument("--threads", type=int, help="the server's encoder threads (as serve)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--seconds", type=float, default=seconds, help=f"how long ({seconds:g})")
    return parser


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement of the module docstring, in that order."""
    texts = read_split(args.data).texts
    results: dict[str, Any] = {
        "texts": len(texts),
        "offline_before": offline(args.model, texts, args.clients, args.engine),
    }
    server, base = start_server(args.model, server_options(args))
    try:
        post(connect(base), texts[:8])
        results["latency"] = latency(base, texts, args.latency_requests)
        results["rss_start"] = rss_mib(server.pid)
        processes = {"machine": None, "clients": os.getpid(), "server": server.pid}
        before = {name: cpu_s(pid) for name, pid in processes.items()}
        counted = health(base)
        run = load(base, texts, args.clients, args.seconds, args.requests, args.per_request)
        cores = {
            name: (cpu_s(pid) - before[name]) / run["seconds"] for name, pid in processes.items()
        }
        others = cores["machine"] - cores["clients"] - cores["server"]
        results["load"] = {
            **run,
            **{f"{n}_cores": c for n, c in cores.items()},
            "others_cores": others,
        }
        results["rss_end"] = rss_mib(server.pid)
        during = {key: value - counted[key] for key, value in health(base).items()}
        results["load"]["texts_a_batch"] = during["texts"] / max(during["batches"], 1)
        cases = bad_requests(Limits())
        results["battery"] = [(case.name, case.status, send(base, case)[0]) for case in cases]
        hang_up(base)
        results["after_hang_up"] = post(connect(base), ["a good film"])[0]
        results["mixed"] = mixed(base, cases, texts)
    finally:
        server.terminate()
        server.wait(timeout=30)
    results["offline_after"] = offline(args.model, texts, args.clients, args.engine)
    return results


def report(r: dict[str, Any]) -> str:
    """The measurements as Markdown tables."""
    lat, run = r["latency"], r["load"]
    before, after = r["offline_before"], r["offline_after"]
    offline_mean = (before["all"] + after["all"]) / 2
    lines = [
        f"Sentences: {r['texts']}.",
        "",
        "| one sentence a request, one client | requests | p50 | p99 |",
        "|---|---|---|---|",
        f"| warm server | {lat['requests']} | {lat['p50_ms']:.1f} ms | {lat['p99_ms']:.1f} ms |",
        "",
        "| clients x sentences a request | seconds | requests | errors | texts/s | p50 | p99 "
        "| texts a batch | RSS start | RSS end | peak RSS | CPU: server, clients, others |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {run['clients']} x {run['per_request']} | {run['seconds']:.1f} | {run['requests']} "
        f"| {run['errors']} | {run['texts_per_s']:.1f} | {run['p50_ms']:.0f} ms "
        f"| {run['p99_ms']:.0f} ms | {run['texts_a_batch']:.1f} "
        f"| {r['rss_start']['VmRSS']:.0f} MiB "
        f"| {r['rss_end']['VmRSS']:.0f} MiB | {r['rss_end']['VmHWM']:.0f} MiB "
        f"| {run['server_cores']:.2f}, {run['clients_cores']:.2f}, "
        f"{run['others_cores']:.2f} cores |",
        "",
        f"Offline, the encoder over the same sentences: {before['all']:.1f} texts/s before the "
        f"server started, {after['all']:.1f} after it stopped (mean {offline_mean:.1f}); under "
        f"load / offline = {run['texts_per_s'] / offline_mean:.2f}. In calls of {run['clients']} "
        f"sentences: {before['chunks']:.1f} and {after['chunks']:.1f} texts/s.",
        "",
        "| bad request | expected | got |",
        "|---|---|---|",
        *(f"| {name} | {want} | {got} |" for name, want, got in r["battery"]),
        f"| half a body, then the client hangs up | (none) | next request: {r['after_hang_up']} |",
        f"| all of the above at once, with 32 good requests | | "
        f"{r['mixed']['as_expected']} of {r['mixed']['requests']} as expected |",
    ]
    return "\n".join(lines)


def main() -> None:
    """Command line: run the measurements, print them as Markdown."""
    parser = load_parser(__doc__, 60.0)
    parser.add_argument("--requests", type=int, default=50_000, help="load test cap (50,000)")
    parser.add_argument("--per-request", type=int, default=1, help="sentences a request (1)")
    parser.add_argument("--latency-requests", type=int, default=300, help="(300)")
    print(report(measure(parser.parse_args())))


if __name__ == "__main__":
    cli.run(main)
