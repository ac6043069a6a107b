"""Where the encoder runs and which precisions run there: the device, and the CPU instructions a
precision needs to be fast (docs/benchmarks.md has the rates measured without them)."""

from __future__ import annotations

import logging

import torch

from pipeline import PipelineError

log = logging.getLogger(__name__)

# the CPU instructions without which a precision falls back to slow generic code
NATIVE_CPU_SUPPORT = {
    "bf16": ("AVX512-BF16 or AMX", ("_is_avx512_bf16_supported", "_is_amx_tile_supported")),
    "int8": ("VNNI", ("_is_vnni_supported",)),
}


def runs_natively(precision: str) -> bool:
    """Whether this CPU has the instructions `precision` needs to be fast (True when torch
    cannot tell)."""
    if precision not in NATIVE_CPU_SUPPORT:
        return True
    known = [getattr(torch.cpu, check, None) for check in NATIVE_CPU_SUPPORT[precision][1]]
    return not all(known) or any(check() for check in known)


def pick_device(name: str) -> torch.device:
    """`auto` is CUDA when available, else CPU; asking for CUDA without one is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise PipelineError("encoder.device=cuda but no CUDA GPU is available; use auto or cpu")
    return torch.device(name)


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision `device` cannot run; warn where it runs slowly (`runs_natively`)."""
    if precision == "fp16" and device.type != "cuda":
        raise PipelineError("encoder.precision=fp16 needs a CUDA GPU; use bf16 on CPU")
    if precision == "int8" and device.type != "cpu":
        raise PipelineError(
            "encoder.precision=int8 runs on the CPU only (encoder.device=cpu); use bf16 or fp16 "
            "on a GPU"
        )
    if device.type == "cpu" and not runs_natively(precision):
        log.warning(
            "encoder.precision=%s: this CPU has no %s, so %s runs several times slower than "
            "fp32 here (an AVX2-only EPYC: fp32 93 GFLOP/s, bf16 16, int8 2); use fp32",
            precision,
            NATIVE_CPU_SUPPORT[precision][0],
            precision,
        )
