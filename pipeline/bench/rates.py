"""The limits a benchmark row is measured against: FLOPs per sentence and the machine's matmul rate.

The matmul rate is measured on the encoder's own linear shapes (every linear layer run on every
token, `rows` tokens at a time) with the kernels the encoder runs: oneDNN's linear on weights
packed ahead (`PrepackedLinear`) in fp32 and bf16 where the encoder prepacks, and
`torch._int_mm` (int8 x int8 -> int32, VNNI on x86) for int8; `torch.nn.functional.linear` (which
packs the weights on every call, the limit of earlier reports) is measured beside them. An
encoder's effective rate on real tokens divided by the rate of its precision says how close to
the hardware it runs.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.encoding.device import NATIVE_CPU_SUPPORT, runs_natively
from pipeline.encoding.encoder import Encoder
from pipeline.fast.prepack import PrepackedLinear, can_prepack

RATE_PRECISIONS = ("fp32", "bf16", "int8")
UNPACKED = " unpacked"  # the key suffix of the F.linear rates


def pick_precisions(asked: str) -> tuple[list[str], dict[str, str]]:
    """The precisions to run, fp32 first, and a note for each one that "native" leaves out.

    `asked` is comma-separated, or "native": fp32, and bf16/int8 where this CPU runs them natively.
    """
    if asked == "native":
        picked = [p for p in RATE_PRECISIONS if runs_natively(p)]  # fp32 always
        return picked, {
            p: f"this CPU has no {NATIVE_CPU_SUPPORT[p][0]}, so {p} would run generic code for "
            f"hours; --precisions fp32,{p} runs it anyway"
            for p in RATE_PRECISIONS
            if p not in picked
        }
    names = {name.strip() for name in asked.split(",") if name.strip()}
    if unknown := names - set(RATE_PRECISIONS):
        raise ValueError(f"--precisions: unknown {', '.join(sorted(unknown))} (fp32, bf16, int8)")
    return ["fp32", *[p for p in RATE_PRECISIONS[1:] if p in names]], {}


def timed(run: Callable[[], Any], repeats: int, warm_up: bool = True) -> dict[str, float]:
    """Warm up once (unless told not to), then time `run` `repeats` times: median, min, max s.

    The warm-up's own time is kept as `first_s` (for a compiled model: the compile).
    """
    first = None
    if warm_up:
        started = time.perf_counter()
        run()
        first = time.perf_counter() - started
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    result = {"median_s": statistics.median(seconds), "min_s": min(seconds), "max_s": max(seconds)}
    return result if first is None else {**result, "first_s": first}


def linear_shapes(encoder: Encoder) -> list[tuple[int, int]]:
    """(out_features, in_features) of every linear layer run on every token (not the pooler)."""
    return [
        (m.out_features, m.in_features)
        for name, m in encoder.model.named_modules()
        if isinstance(m, torch.nn.Linear | PrepackedLinear) and "pooler" not in name
    ]


def matmul_rates(
    shapes: list[tuple[int, int]], rows: int, precisions: Sequence[str]
) -> dict[str, float]:
    """`matmul_rate` of each of `precisions`, and of fp32 and bf16 unpacked (`F.linear`) where
    asked. Only those asked for: bf16 and int8 on a CPU without AVX512-BF16 and VNNI run generic
    code, minutes for MPNet's shapes."""
    rates = {}
    for precision in precisions:
        rates[precision] = matmul_rate(shapes, precision, rows)
        if precision != "int8":
            rates[precision + UNPACKED] = matmul_rate(shapes, precision, rows, prepacked=False)
    return rates


def rate_key(encoder: Encoder, precision: str) -> str:
    """The `matmul_rates` key `encoder` in `precision` is measured against: the kernel it runs."""
    return precision if encoder.prepacked or precision == "int8" else precision + UNPACKED


def matmul_rate(
    shapes: list[tuple[int, int]], precision: str, rows: int, prepacked: bool = True
) -> float:
    """GFLOP/s (int8: GOP/s) of the linear kernel of `precision` on these weight shapes, `rows`
    tokens at a time: prepacked (as the encoder runs it, where it does) unless told not to."""
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "int8": torch.int8}[precision]
    packs = prepacked and can_prepack(precision, torch.device("cpu"))
    kernels: list[tuple[int, Callable[[torch.Tensor], torch.Tensor]]] = []  # (in_features, run)
    for n, k in shapes:
        if precision == "int8":
            w = torch.randint(-127, 128, (k, n), dtype=dtype)
            kernels.append((k, lambda x, w=w: torch._int_mm(x, w)))
        elif packs:
            kernels.append((k, PrepackedLinear(torch.nn.Linear(k, n, bias=False), dtype)))
        else:
            w = torch.randn(n, k, dtype=dtype)
            kernels.append((k, lambda x, w=w: torch.nn.functional.linear(x, w)))
    inputs = {
        k: torch.randint(-127, 128, (rows, k), dtype=dtype)
        if precision == "int8"
        else torch.randn(rows, k, dtype=dtype)
        for _, k in shapes
    }

    def run() -> None:
        for _ in range(5):
            for k, kernel in kernels:
                kernel(inputs[k])

    flops = sum(2 * rows * n * k for n, k in shapes)
    return 5 * flops / timed(run, repeats=5)["median_s"] / 1e9


def flops_per_sentence(
    encoder: Encoder, shapes: list[tuple[int, int]], lengths: np.ndarray
) -> np.ndarray:
    """2 x linear weights per token (pooler excluded) plus attention (QK^T and AV) per layer."""
    linear = sum(n * k for n, k in shapes)
    config = encoder.model.config
    attention = 4 * config.num_hidden_layers * config.hidden_size * lengths.astype(np.float64) ** 2
    return 2 * linear * lengths + attention


def padding_ratio(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    """Padded tokens / real tokens for a batching of sentences with these token lengths."""
    return sum(len(b) * lengths[b].max() for b in batches) / lengths.sum()


def machine() -> dict[str, Any]:
    """CPU model, core count, torch version, threads and load (the benchmark runs on the CPU)."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    return {
        "cpu": names[0] if names else platform.processor(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "loadavg_1min": os.getloadavg()[0],
    }
