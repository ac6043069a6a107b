"""`encoder.precision=int8` (CPU only): dynamic int8 linear layers with torchao, int8 weights with
one scale per output channel and activations with one scale per token, smoothed as in
SmoothQuant (alpha 0.5) on the sentences of `calibration.txt`. torchao's int8 kernels are fast
only compiled, so int8 always compiles. Why per-token, why smoothed, what it costs:
docs/benchmarks.md ("int8")."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from pipeline import PipelineError
from pipeline.fast.versions import in_range, installed, range_text

log = logging.getLogger(__name__)

CALIBRATION = Path(__file__).with_name("calibration.txt")  # int8's smoothing is measured on these
SMOOTHING_ALPHA = 0.5  # SmoothQuant's default; 0.65 was as good on MiniLM, 0.3 and 0.8 worse


def require_torchao(found: str | None) -> None:
    """A clear error unless torchao version `found` (None: not installed) is one int8 was written
    against (its SmoothQuant API is a prototype)."""
    if found is None or not in_range(found, "torchao"):
        have = "torchao is not installed" if found is None else f"found torchao {found}"
        raise PipelineError(
            f"encoder.precision=int8 needs {range_text('torchao')} ({have}): "
            f"pip install '{range_text('torchao')}', or use fp32/bf16"
        )


def reduce_range_here() -> bool:
    """Whether int8 must keep to 7 bits on this CPU (without VNNI, 8 bits overflow)."""
    require_torchao(installed("torchao"))
    from torchao.utils import should_reduce_range

    return should_reduce_range(torch.device("cpu"))


def quantize_int8(
    model: torch.nn.Module,
    calibrate: Callable[[list[str]], object],
    alpha: float | None = SMOOTHING_ALPHA,
    reduce_range: bool | None = None,
) -> None:
    """Make the per-token linear layers dynamic int8, smoothed SmoothQuant-style, in place.

    `calibrate(texts)` runs the model on texts (the calibration sentences), between inserting
    torchao's observers and converting; `alpha=None` leaves out the smoothing. `reduce_range`
    (7-bit int8) defaults to what this CPU needs (`reduce_range_here`).
    """
    require_torchao(installed("torchao"))
    from torchao.prototype.smoothquant import SmoothQuantConfig
    from torchao.prototype.smoothquant.core import SmoothQuantObservedLinear as observed
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    if reduce_range is None:
        reduce_range = reduce_range_here()
    base = Int8DynamicActivationInt8WeightConfig(reduce_range=reduce_range)

    def step(name: str) -> SmoothQuantConfig:
        return SmoothQuantConfig(base, step=name, alpha=alpha, use_running_absmax=True)

    quantize_(model, step("prepare"), filter_fn=_is_token_linear)
    calibrate(CALIBRATION.read_text(encoding="utf-8").splitlines())
    quantize_(model, step("convert"), filter_fn=lambda module, _: isinstance(module, observed))


def compile_model(model: torch.nn.Module) -> None:
    """Compile `model` in place for any batch shape (`dynamic=True`: one graph for all; inductor's
    on-disk caches keep the generated code between processes)."""
    if torch._dynamo.config.disable:  # TORCH_COMPILE_DISABLE=1, or the precision study
        log.info("encoder: compiling is off (TORCH_COMPILE_DISABLE), so int8 runs eager (slow)")
        return
    log.info(
        "encoder: compiling the model on its first batch (minutes the first time on a machine, "
        "about a minute later on: inductor's cache is in %s)",
        os.environ.get("TORCHINDUCTOR_CACHE_DIR", "/tmp/torchinductor_<user>"),
    )
    # torchao's int8 tensors opt out of the traced-graph cache (only the generated code is cached)
    warnings.filterwarnings("ignore", message="Int8Tensor does not implement _stable_hash")
    model.compile(dynamic=True)


def _is_token_linear(module: torch.nn.Module, name: str) -> bool:
    """A linear layer run on every token (the pooler, on [CLS] only, stays fp32)."""
    return isinstance(module, torch.nn.Linear) and "pooler" not in name
