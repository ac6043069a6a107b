"""How bf16 or int8 runs, for the features fingerprint: each of these changes the vectors (bf16
prepacked rounds the GELU's input once, autocast twice; 7-bit int8 is not 8-bit int8)."""

from __future__ import annotations

from typing import Any

import torch

from pipeline.fast.int8 import CALIBRATION, SMOOTHING_ALPHA, reduce_range_here
from pipeline.fast.prepack import can_prepack
from pipeline.fast.versions import allowed
from pipeline.io import sha256_file


def recipe(
    precision: str,
    device: torch.device,
    prepack: bool = True,
    int8_reduce_range: bool | None = None,
) -> dict[str, Any]:
    """The recipe of `load_encoder(config, prepack=prepack, int8_reduce_range=...)` for
    `precision` ("bf16" or "int8") on `device`; None for `int8_reduce_range` is this CPU's need."""
    if precision == "bf16":
        kind = "oneDNN prepacked, GELU fused, where the encoder runs packed batches"
        prepacked = prepack and can_prepack(precision, device) and allowed("packing")
        return {"linear_layers": kind if prepacked else "torch, autocast"}
    return {
        "quantization": "torchao dynamic int8, per-token activations, per-channel weights",
        "smoothquant_alpha": SMOOTHING_ALPHA,
        "calibration_sha256": sha256_file(CALIBRATION),
        "reduce_range": reduce_range_here() if int8_reduce_range is None else int8_reduce_range,
    }
