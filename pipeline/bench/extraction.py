"""Benchmark feature extraction: ours vs sentence-transformers vs the blog's way vs the machine.

In one run, per encoder (MiniLM, then the BERT-base-sized MPNet if `make encoders` installed it),
on the same texts (the first N phrases of GLUE SST-2 train; MPNet on a quarter of them):
1. ours: `pipeline.encoding.encoder.embed` (token-length sort, token-budget batches) in fp32,
   and in bf16 and int8 where this CPU runs them natively or `--precisions` names them (int8:
   torchao dynamic int8, compiled: its first run, the compile, is reported apart),
   and where the encoder runs packed batches, fp32 padded too (what packing saves);
2. sentence-transformers `encode()` on the same model folder, batch size tuned over a small grid;
3. the blog's way (first encoder only): pad every sentence to the longest, fixed chunks of 2,000;
4. the machine: matmul rate on the encoder's own linear shapes in the same precisions
   (pipeline/bench/rates.py);
5. a long text (phrases joined to 2,000 tokens): `embed` (windows cut, batched, pooled) against
   its windows encoded as one batch, side by side (target: at most 1.2x; `--long-text` alone).
Each way is warmed up, then timed 5 times (3 with --quick): median and spread. The full mode also
measures peak RSS of the features stage at 10k and 67k sentences and the wall time of
`predict.py`; `--glue-features` adds the wall time of a cold features stage on all of GLUE SST-2
train + dev per encoder and precision (long: MPNet fp32 alone is ~15 min on 2 cores).

    python -m pipeline.bench.extraction [--quick] [--glue-features] [--long-text] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import PipelineError, cli
from pipeline.bench.long_text import long_text, long_text_cost, long_text_markdown
from pipeline.bench.markdown import markdown
from pipeline.bench.rates import (
    UNPACKED,
    flops_per_sentence,
    linear_shapes,
    machine,
    matmul_rates,
    padding_ratio,
    pick_precisions,
    rate_key,
    timed,
)
from pipeline.bench.ways import blog_way, onnx_way, sentence_transformers_way
from pipeline.config import EncoderConfig
from pipeline.data.splits import read_split
from pipeline.data.tables import find_split_file
from pipeline.encoding.batching import embed, plan
from pipeline.encoding.encoder import load_encoder
from pipeline.io import write_json, write_text


def features_run(
    data: Path, encoder: str, precision: str = "fp32", limit: int | None = None
) -> dict[str, float]:
    """Wall time and peak resident memory of a cold `pipeline.features` run (a fresh cache)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "bench.yaml")
        config.write_text(
            f"data: {{dir: {data.resolve()}, limit: {limit or 'null'}}}\n"
            f"encoder: {{name: {encoder}, pooling: mean, precision: {precision}}}\n"
        )
        command = [sys.executable, "-m", "pipeline.features", "--config", str(config)]
        env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=tmp, env=env, stderr=subprocess.PIPE, text=True)
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if status != 0:
            raise RuntimeError(f"features run failed: {stderr[-2000:]}")
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}


def predict_wall(model_dir: Path, texts: list[str]) -> dict[str, float]:
    """Wall time of predict.py for one sentence, and texts/s for a 1,000-line file."""
    script = [sys.executable, "pipeline/predict.py", "--model", str(model_dir)]
    started = time.perf_counter()
    subprocess.run([*script, texts[0]], check=True, capture_output=True)
    one = time.perf_counter() - started
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as handle:
        handle.write("\n".join(texts[:1000]) + "\n")
        handle.flush()
        started = time.perf_counter()
        subprocess.run([*script, "--file", handle.name], check=True, capture_output=True)
        thousand = time.perf_counter() - started
    return {
        "one_sentence_s": one,
        "file_1000_s": thousand,
        "file_1000_texts_per_s": 1000 / thousand,
    }


def bench_encoder(
    name: str, texts: list[str], repeats: int, blog: bool, precisions: Sequence[str]
) -> dict[str, Any]:
    """All ways on one encoder (ours in `precisions`, fp32 first: the others are measured against
    it), with the limits (matmul rates) they are measured against."""
    config = EncoderConfig(name=name, pooling="mean", device="cpu")
    encoder = load_encoder(config)
    tokens = encoder.tokenize(texts)
    lengths = np.array([len(row) for row in tokens.ids])
    shapes = linear_shapes(encoder)
    real_tokens = int(lengths.sum())
    flops = float(flops_per_sentence(encoder, shapes, lengths).sum())
    batches = plan(tokens, encoder.config.batch_tokens)  # when padded
    rates = matmul_rates(shapes, encoder.config.batch_tokens, precisions)
    ways: dict[str, dict[str, Any]] = {}
    runs = [(f"ours ({precision})", precision, {}) for precision in precisions]
    if encoder.packed:  # what prepacking and packing save
        runs += [("ours (fp32, unprepacked)", "fp32", {"prepack": False})]
        runs += [("ours (fp32, padded)", "fp32", {"packing": False})]
    for way, precision, options in runs:  # int8 is quantized and compiled at load
        ours = (
            encoder
            if precision == "fp32" and not options
            else load_encoder(replace(config, precision=precision), **options)
        )
        ways[way] = {
            **timed(lambda e=ours: embed(e, texts, progress=False), repeats),
            "padding": 1.0 if ours.packed else padding_ratio(lengths, batches),
            "precision": precision,
            "limit": rate_key(ours, precision),
        }
    ways["sentence-transformers encode()"] = {
        **sentence_transformers_way(encoder.folder, texts, lengths, repeats),
        "precision": "fp32",
    }
    reference = embed(encoder, texts, progress=False)[0]
    for precision in ("fp32", "int8"):  # `make export`'s graphs on ONNX Runtime
        ways[f"ONNX Runtime ({precision})"] = onnx_way(config, texts, precision, repeats, reference)
    if blog:
        ways["blog's way"] = {
            **timed(lambda: blog_way(encoder, texts), 1, warm_up=False),
            "padding": len(lengths) * lengths.max() / real_tokens,
            "precision": "fp32",
        }
    for way in ways.values():
        way["texts_per_s"] = len(texts) / way["median_s"]
        way["real_tokens_per_s"] = real_tokens / way["median_s"]
        way["effective_gflops"] = flops / way["median_s"] / 1e9
        way["of_matmul_rate"] = (
            way["effective_gflops"] / rates[way.get("limit", way["precision"] + UNPACKED)]
        )
        way["x_fp32"] = ways["ours (fp32)"]["median_s"] / way["median_s"]
        way["x_encode"] = ways["sentence-transformers encode()"]["median_s"] / way["median_s"]
    return {
        "long_text": long_text_cost(encoder, long_text(encoder, texts), 2 * repeats + 1),
        "texts": len(texts),
        "real_tokens": real_tokens,
        "batch_tokens": encoder.config.batch_tokens,
        "flops_per_real_token": flops / real_tokens,
        "matmul_gflops": rates,
        "ways": ways,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; returns the report as a dict."""
    rss = (
        {}
        if args.quick
        else {  # first: subprocesses on an otherwise idle machine
            "10k": features_run(args.data, args.encoders[0], limit=10_000)["peak_rss_mb"],
            "67k": features_run(args.data, args.encoders[0])["peak_rss_mb"],
        }
    )
    texts = read_split(find_split_file(args.data, "train")).texts[: args.n]
    report: dict[str, Any] = {
        "machine": machine(),
        "source": f"the first phrases of {find_split_file(args.data, 'train')}",
        "repeats": args.repeats,
        "encoders": {},
        "skipped": {},
    }
    for index, name in enumerate(args.encoders):
        share = texts if index == 0 else texts[: len(texts) // 4]  # BERT-base: 8x the work
        try:
            report["encoders"][name] = bench_encoder(
                name, share, args.repeats, blog=index == 0, precisions=args.precisions
            )
        except PipelineError as err:  # e.g. mpnet before `make encoders`
            report["skipped"][name] = str(err)
    if args.glue_features:
        report["glue_features_s"] = {
            name: {p: features_run(args.data, name, p)["wall_s"] for p in args.precisions}
            for name in report["encoders"]
        }
    if rss:
        report["peak_rss_mb"] = rss
    if args.model and (args.model / "model.json").is_file():
        report["predict"] = predict_wall(args.model, texts)
    report["machine"]["loadavg_1min_end"] = os.getloadavg()[0]
    return report


def long_text_only(args: argparse.Namespace) -> dict[str, Any]:
    """`--long-text`: the long-text row alone, per encoder (fp32), on this machine."""
    texts = read_split(find_split_file(args.data, "train")).texts[:5000]
    report: dict[str, Any] = {"machine": machine(), "encoders": {}, "skipped": {}}
    for name in args.encoders:
        try:
            encoder = load_encoder(EncoderConfig(name=name, pooling="mean", device="cpu"))
        except PipelineError as err:  # e.g. mpnet before `make encoders`
            report["skipped"][name] = str(err)
            continue
        cost = long_text_cost(encoder, long_text(encoder, texts), 11)
        report["encoders"][name] = {"long_text": cost}
    report["machine"]["loadavg_1min_end"] = os.getloadavg()[0]
    return report


def main() -> None:
    """Command line: run the benchmark and write reports/bench/<mode>.json and .md."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 texts, no memory runs")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/sst2-glue"))
    parser.add_argument(
        "--encoders",
        default="minilm,mpnet",
        help="comma-separated; the first also gets the blog's way and the memory runs, the "
        "others run on a quarter of the texts; one not installed is skipped with a note",
    )
    parser.add_argument(
        "--glue-features",
        action="store_true",
        help="also time a cold features stage on all of GLUE train + dev per encoder and "
        "precision (MiniLM ~5 min, MPNet ~25 min on 2 cores)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=Path("models/sst2-minilm"),
        help="a trained classifier for the predict timings (skipped if absent)",
    )
    parser.add_argument(
        "--precisions",
        default="native",
        help="comma-separated, of fp32,bf16,int8 (fp32 always runs: the others are measured "
        "against it); default 'native': fp32, and bf16/int8 where this CPU has their "
        "instructions (AVX512-BF16 or AMX, VNNI). Without them they run generic code for hours; "
        "name them to run them anyway",
    )
    parser.add_argument(
        "--long-text",
        action="store_true",
        help="only the long-text row (a 2,000-token text against its windows as one batch, 11 "
        "runs each) per encoder, into long-text.json and .md",
    )
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    args = parser.parse_args()
    args.encoders = [name.strip() for name in args.encoders.split(",") if name.strip()]
    try:
        args.precisions, left_out = pick_precisions(args.precisions)
    except ValueError as err:
        parser.error(str(err))
    args.n, args.repeats = (2000, 3) if args.quick else (10_000, 5)
    if args.long_text:
        report, name = long_text_only(args), "long-text"
        text = long_text_markdown(report)
    else:
        report, name = run(args), "quick" if args.quick else "full"
        report["skipped"].update(left_out)
        text = markdown(report) + long_text_markdown(report)
    write_json(args.out / f"{name}.json", report)
    write_text(args.out / f"{name}.md", text)
    print(text)


if __name__ == "__main__":
    cli.run(main)
