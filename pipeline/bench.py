"""Benchmark feature extraction: ours vs sentence-transformers vs the blog's way vs the machine.

In one run, on the same texts (the first N phrases of GLUE SST-2 train) and the same encoder:
1. ours: `pipeline.encoder.embed` (token-length sort, token-budget batches), fp32 and bf16;
2. sentence-transformers `encode()` on the same model folder, batch size tuned over a small grid;
3. the blog's way: pad every sentence to the longest of the whole set, run fixed chunks of 2,000;
4. the machine: torch's matmul rate on the encoder's own linear shapes, fp32 and bf16.
Each way is warmed up, then timed `--repeats` times (median and spread). FLOPs per real token are
2 x the encoder's linear weights plus attention over each sentence's own length; the effective
rate on real tokens divided by the matmul rate says how close to the hardware a way runs.
The full mode also measures peak RSS of the features stage at 10k and 67k sentences, and the
wall time of `predict.py` for one sentence and for a 1,000-line file.

    python -m pipeline.bench [--quick] [--data ../shared/data/sst2-glue]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline import cli
from pipeline.config import EncoderConfig
from pipeline.data import read_split
from pipeline.encoder import Encoder, embed, load_encoder, pad, token_budget_batches, tokenize
from pipeline.io import write_json, write_text
from pipeline.tables import find_split_file

BLOG_CHUNK = 2000
ST_BATCH_SIZES = (32, 64, 128, 256)


def timed(run: Callable[[], Any], repeats: int, warm_up: bool = True) -> dict[str, float]:
    """Warm up once (unless told not to), then time `run` `repeats` times: median, min, max s."""
    if warm_up:
        run()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return {"median_s": statistics.median(seconds), "min_s": min(seconds), "max_s": max(seconds)}


def blog_way(encoder: Encoder, texts: list[str]) -> np.ndarray:
    """The notebook's recipe: pad all to the global longest, [CLS] of fixed chunks."""
    ids, _ = tokenize(encoder, texts)
    padded, mask = pad(ids, encoder.tokenizer.pad_token_id)  # every row to the global longest
    out = []
    with torch.inference_mode():
        for start in range(0, len(ids), BLOG_CHUNK):
            chunk = slice(start, start + BLOG_CHUNK)
            hidden = encoder.model(input_ids=padded[chunk], attention_mask=mask[chunk])
            out.append(hidden.last_hidden_state[:, 0].numpy())
    return np.concatenate(out)


def encoder_linears(encoder: Encoder) -> list[torch.nn.Linear]:
    """The linear layers a forward pass runs on every token (the pooler left out)."""
    return [
        m
        for name, m in encoder.model.named_modules()
        if isinstance(m, torch.nn.Linear) and "pooler" not in name
    ]


def matmul_rate(encoder: Encoder, dtype: torch.dtype, rows: int) -> float:
    """GFLOP/s of torch matmuls with the encoder's linear shapes, `rows` tokens at a time."""
    weights = [torch.randn(m.weight.shape, dtype=dtype) for m in encoder_linears(encoder)]
    inputs = {w.shape[1]: torch.randn(rows, w.shape[1], dtype=dtype) for w in weights}
    flops = sum(2 * rows * w.numel() for w in weights)

    def run() -> None:
        for _ in range(5):
            for w in weights:
                torch.nn.functional.linear(inputs[w.shape[1]], w)

    return 5 * flops / timed(run, repeats=5)["median_s"] / 1e9


def flops_per_sentence(encoder: Encoder, lengths: np.ndarray) -> np.ndarray:
    """2 x linear weights per token (pooler excluded) plus attention (QK^T and AV) per layer."""
    linear = sum(m.weight.numel() for m in encoder_linears(encoder))
    config = encoder.model.config
    attention = 4 * config.num_hidden_layers * config.hidden_size * lengths.astype(np.float64) ** 2
    return 2 * linear * lengths + attention


def padding_ratio(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    """Padded tokens / real tokens for a batching of sentences with these token lengths."""
    return sum(len(b) * lengths[b].max() for b in batches) / lengths.sum()


def sentence_transformers_way(
    folder: Path, texts: list[str], lengths: np.ndarray, repeats: int
) -> dict[str, Any]:
    """`SentenceTransformer.encode()` with the best batch size of a small grid."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")

    def encode(batch: list[str], size: int) -> np.ndarray:
        return model.encode(batch, batch_size=size, show_progress_bar=False)

    tried = {
        size: timed(lambda s=size: encode(texts[:1000], s), 1)["median_s"]
        for size in ST_BATCH_SIZES
    }
    best = min(tried, key=tried.get)
    by_chars = np.argsort([-len(t) for t in texts], kind="stable")  # how encode() sorts
    batches = [by_chars[i : i + best] for i in range(0, len(texts), best)]
    result = timed(lambda: encode(texts, best), repeats)
    return {
        **result,
        "batch_size": best,
        "tuning_s": tried,
        "padding": padding_ratio(lengths, batches),
    }


def peak_rss_mb(data: Path, encoder: str, limit: int | None) -> float:
    """Peak resident memory of a cold `pipeline.features` run on the first `limit` sentences."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "bench.yaml")
        config.write_text(
            f"data: {{dir: {data.resolve()}, limit: {limit or 'null'}}}\n"
            f"encoder: {{name: {encoder}, pooling: mean}}\n"
        )
        command = [sys.executable, "-m", "pipeline.features", "--config", str(config)]
        env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
        process = subprocess.Popen(command, cwd=tmp, env=env, stderr=subprocess.PIPE, text=True)
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        if status != 0:
            raise RuntimeError(f"features run failed: {stderr[-2000:]}")
    return usage.ru_maxrss / 1024


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


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; returns the report as a dict."""
    rss = (
        {}
        if args.quick
        else {  # first: subprocesses on an otherwise idle machine
            "10k": peak_rss_mb(args.data, args.encoder, 10_000),
            "67k": peak_rss_mb(args.data, args.encoder, None),
        }
    )
    texts = read_split(find_split_file(args.data, "train")).texts[: args.n]
    encoder = load_encoder(EncoderConfig(name=args.encoder, pooling="mean", device="cpu"))
    lengths = np.array([len(row) for row in tokenize(encoder, texts)[0]])
    real_tokens, flops = int(lengths.sum()), float(flops_per_sentence(encoder, lengths).sum())
    order = np.argsort(-lengths, kind="stable")
    rates = {
        name: matmul_rate(encoder, dtype, encoder.config.batch_tokens)
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    ways: dict[str, dict[str, Any]] = {}
    for precision in ("fp32", "bf16"):
        encoder.config.precision = precision
        ways[f"ours ({precision})"] = {
            **timed(lambda: embed(encoder, texts, progress=False), args.repeats),
            "padding": padding_ratio(
                lengths, token_budget_batches(order, lengths, encoder.config.batch_tokens)
            ),
            "precision": precision,
        }
    encoder.config.precision = "fp32"
    ways["sentence-transformers encode()"] = {
        **sentence_transformers_way(encoder.folder, texts, lengths, args.repeats),
        "precision": "fp32",
    }
    width = lengths.max()
    ways["blog's way"] = {
        **timed(lambda: blog_way(encoder, texts), 1, warm_up=False),
        "padding": len(lengths) * width / real_tokens,
        "precision": "fp32",
    }
    ours = ways["ours (fp32)"]["median_s"]
    for way in ways.values():
        way["texts_per_s"] = len(texts) / way["median_s"]
        way["real_tokens_per_s"] = real_tokens / way["median_s"]
        way["effective_gflops"] = flops / way["median_s"] / 1e9
        way["of_matmul_rate"] = way["effective_gflops"] / rates[way["precision"]]
        way["ours_speedup"] = way["median_s"] / ours
    report = {
        "machine": machine(),
        "encoder": args.encoder,
        "texts": len(texts),
        "real_tokens": real_tokens,
        "source": f"first {len(texts)} phrases of {find_split_file(args.data, 'train')}",
        "batch_tokens": encoder.config.batch_tokens,
        "flops_per_real_token": flops / real_tokens,
        "matmul_gflops": rates,
        "repeats": args.repeats,
        "ways": ways,
    }
    if rss:
        report["peak_rss_mb"] = rss
    if args.model and (args.model / "model.json").is_file():
        report["predict"] = predict_wall(args.model, texts)
    return report


def machine() -> dict[str, Any]:
    """CPU model, core count, torch version and threads (the benchmark runs on the CPU)."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    return {
        "cpu": names[0] if names else platform.processor(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table with its context."""
    m = report["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} "
        f"({m['threads']} threads), no GPU.",
        f"Texts: {report['source']} ({report['real_tokens']:,} real tokens); encoder "
        f"`{report['encoder']}`; {report['flops_per_real_token'] / 1e6:.1f} MFLOP per real token; "
        f"median of {report['repeats']} runs after a warm-up (the blog's way: one run on the "
        "warm model, it is slow).",
        f"Matmul rate on the encoder's shapes: fp32 {report['matmul_gflops']['fp32']:.0f} GFLOP/s, "
        f"bf16 {report['matmul_gflops']['bf16']:.0f} GFLOP/s.",
        "",
        "| way | texts/s | real tokens/s | s (min-max) | padding | effective GFLOP/s "
        "| ÷ matmul rate | ours is x faster |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, w in report["ways"].items():
        lines.append(
            f"| {name} | {w['texts_per_s']:,.0f} | {w['real_tokens_per_s']:,.0f} | "
            f"{w['median_s']:.2f} ({w['min_s']:.2f}-{w['max_s']:.2f}) | {w['padding']:.2f} | "
            f"{w['effective_gflops']:.0f} | {w['of_matmul_rate']:.2f} | {w['ours_speedup']:.2f} |"
        )
    if "peak_rss_mb" in report:
        rss = report["peak_rss_mb"]
        lines += [
            "",
            f"Peak RSS of the features stage: {rss['10k']:.0f} MB for 10k sentences, "
            f"{rss['67k']:.0f} MB for 67k.",
        ]
    if "predict" in report:
        p = report["predict"]
        lines += [
            "",
            f"predict.py wall time: {p['one_sentence_s']:.2f} s for one sentence (cold); "
            f"{p['file_1000_s']:.2f} s for a 1,000-line file "
            f"({p['file_1000_texts_per_s']:.0f} texts/s including start-up).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command line: run the benchmark and write reports/bench/<mode>.json and .md."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 texts, no memory runs")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/sst2-glue"))
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument(
        "--model",
        type=Path,
        default=Path("models/sst2-minilm"),
        help="a trained classifier for the predict timings (skipped if absent)",
    )
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    args = parser.parse_args()
    args.n, args.repeats = (2000, 3) if args.quick else (10_000, 5)
    report = run(args)
    name = "quick" if args.quick else "full"
    write_json(args.out / f"{name}.json", report)
    write_text(args.out / f"{name}.md", markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    cli.run(main)
