"""How the encoder runs fast, and which precision runs where: prepacked or int8 linear layers.

On the CPU, fp32 and bf16 linear layers are swapped for `PrepackedLinear` at load: `nn.Linear`
hands its weight matrix to oneDNN's kernel, which copies it into the kernel's blocked layout on
every call; packed once, a forward pass skips those copies, and the GELU after a feed-forward
block's first linear layer runs inside it (one pass over its output fewer). Alone in a loop,
MiniLM's shapes ran 2.3x faster for one sentence (9 rows: 70 against 165 us, 384 -> 1,536),
1.4x at 64 rows and 1.12-1.17x at 775-4,096 rows in fp32; in bf16 1.6x at 9 rows and 1.07x at
4,096. The sums are the same up to their order.

oneDNN compiles a kernel for each row count it meets (2.4 ms and about 0.6 MB each, kept in a
cache of 1,024), so a server seeing every token count from 2 to 4,000 grew from 645 to 944 MiB.
Packed batches are therefore topped up to a multiple of ROUND_ROWS_TO tokens (of 8 below it):
at most 71 counts up to 4,096, 0.8 % more rows at 4,096, and at most 7 more for one sentence
(whose linear layers cost in proportion to its rows on an AVX2 CPU: 293 us at 25 rows, 345 at
32). Only encoders that run packed batches are prepacked; a padded batch has sentences x length
rows, any number.

`encoder.precision=int8` (CPU only) replaces the encoder's linear layers by dynamic int8 ones with
torchao: int8 weights with one scale per output channel, activations quantized at run time with
one scale per token (per-tensor scales, as in `torch.ao.quantization.quantize_dynamic`, do not
survive the outlier activations of these encoders: mean cosine 0.93 to fp32 on MiniLM), smoothed
as in SmoothQuant (torchao's `SmoothQuantConfig`, alpha 0.5): each input channel is divided by
s = max|x|^0.5 / max|w|^0.5 and its weights multiplied by s, which moves part of the outlier
channels' range into the weights. The channel maxima come from one pass over the 32 sentences of
`calibration.txt` when the encoder loads. Mean cosine to fp32 on 300 GLUE dev sentences: MiniLM
0.99675 per-token alone, 0.99881 smoothed; MPNet 0.99562 and 0.99816. torchao's int8 kernels are
only fast once compiled (eager they are 5x slower than fp32), so int8 always compiles. Compiling
fp32/bf16 did not pay (docs/benchmarks.md), so they run eager.

Compiling uses `dynamic=True` (one graph for every batch shape, not one per sentence length) and
inductor's on-disk caches (on by default, in $TORCHINDUCTOR_CACHE_DIR, default
/tmp/torchinductor_<user>; torch settles that folder when transformers imports torchao, so set the
variable before starting Python to move it), so the code generation is paid once per machine and
torch version; tracing the model is paid once per process.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pipeline import PipelineError
from pipeline.io import sha256_file

log = logging.getLogger(__name__)

CALIBRATION = Path(__file__).with_name("calibration.txt")  # int8's smoothing is measured on these
NEEDS_TORCHAO = (
    "encoder.precision=int8 needs torchao: pip install 'torchao>=0.18' (make setup installs it), "
    "or use fp32/bf16"
)
# feed-forward blocks whose forward is linear -> GELU: (linear, activation) attribute names
GELU_AFTER_LINEAR = {
    "BertIntermediate": ("dense", "intermediate_act_fn"),  # BERT, MiniLM
    "MPNetIntermediate": ("dense", "intermediate_act_fn"),
    "FFN": ("lin1", "activation"),  # DistilBERT
}
PACKED_FOR_ROWS = 4096  # oneDNN's layout hint; 1, 9 and 4,096 ran every row count alike
ROUND_ROWS_TO = 64  # packed batches' token counts, so oneDNN compiles few kernels (see above)
SMOOTHING_ALPHA = 0.5  # SmoothQuant's default; 0.65 was as good on MiniLM, 0.3 and 0.8 worse


# the CPU instructions without which a precision falls back to slow generic code, as measured on
# an AVX2-only EPYC (Zen 3): fp32 matmul 93 GFLOP/s, bf16 16 GFLOP/s, int8 (torch._int_mm) 2 GOP/s
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
    if device.type == "cpu":
        warn_if_slow_on_this_cpu(precision)


def warn_if_slow_on_this_cpu(precision: str) -> None:
    """Log a warning when this CPU lacks the instructions that make `precision` fast."""
    if not runs_natively(precision):
        needs = NATIVE_CPU_SUPPORT[precision][0]
        log.warning(
            "encoder.precision=%s: this CPU has no %s, so %s runs several times slower than "
            "fp32 here (an AVX2-only EPYC: fp32 93 GFLOP/s, bf16 16, int8 2); use fp32",
            precision,
            needs,
            precision,
        )


def recipe(precision: str, device: torch.device) -> dict[str, Any]:
    """How bf16 or int8 runs on `device`, for the features fingerprint: each of these changes the
    vectors (bf16 prepacked rounds the GELU's input once, autocast twice)."""
    if precision == "bf16":
        kind = "oneDNN prepacked, GELU fused, where the encoder runs packed batches"
        return {"linear_layers": kind if can_prepack(precision, device) else "torch, autocast"}
    return {
        "quantization": "torchao dynamic int8, per-token activations, per-channel weights",
        "smoothquant_alpha": SMOOTHING_ALPHA,
        "calibration_sha256": sha256_file(CALIBRATION),
        "reduce_range": _reduce_range(),
    }


def _reduce_range() -> bool:
    """Whether int8 must keep to 7 bits on this CPU (without VNNI, 8 bits overflow)."""
    try:
        from torchao.utils import should_reduce_range
    except ImportError:
        raise PipelineError(NEEDS_TORCHAO) from None
    return should_reduce_range(torch.device("cpu"))


def quantize_int8(
    model: torch.nn.Module,
    calibrate: Callable[[list[str]], object],
    alpha: float | None = SMOOTHING_ALPHA,
) -> None:
    """Make the per-token linear layers dynamic int8, smoothed SmoothQuant-style, in place.

    `calibrate(texts)` runs the model on texts (the calibration sentences), between inserting
    torchao's observers and converting; `alpha=None` leaves out the smoothing.
    """
    try:
        from torchao.prototype.smoothquant import SmoothQuantConfig
        from torchao.prototype.smoothquant.core import SmoothQuantObservedLinear as observed
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    except ImportError:
        raise PipelineError(NEEDS_TORCHAO) from None
    base = Int8DynamicActivationInt8WeightConfig(reduce_range=_reduce_range())

    def step(name: str) -> SmoothQuantConfig:
        return SmoothQuantConfig(base, step=name, alpha=alpha, use_running_absmax=True)

    quantize_(model, step("prepare"), filter_fn=_is_token_linear)
    calibrate(CALIBRATION.read_text(encoding="utf-8").splitlines())
    quantize_(model, step("convert"), filter_fn=lambda module, _: isinstance(module, observed))


class PrepackedLinear(torch.nn.Module):
    """A frozen linear layer whose weights oneDNN laid out for its CPU kernel once, at load,
    optionally with the GELU that follows it fused in (`activation="gelu"`, the exact erf one).

    Runs in `dtype` (fp32 or bf16): inputs are cast to it, as autocast would cast them.
    """

    def __init__(
        self, linear: torch.nn.Linear, dtype: torch.dtype, activation: str = "none"
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.dtype, self.activation = dtype, activation
        weight = linear.weight.detach().to(dtype)
        self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(weight, PACKED_FOR_ROWS)
        self.bias = None if linear.bias is None else linear.bias.detach().to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """activation(x @ weightᵀ + bias), in `dtype`."""
        algorithm = "none" if self.activation == "gelu" else ""  # "none": erf, not tanh
        return torch.ops.mkldnn._linear_pointwise(
            x.to(self.dtype), self.packed_weight, self.bias, self.activation, [], algorithm
        )


def can_prepack(precision: str, device: torch.device) -> bool:
    """Whether `prepack_linears` applies: fp32, or bf16 where this CPU runs it natively, on a CPU
    whose torch build has oneDNN's prepacked linear layer (x86 builds do)."""
    return (
        device.type == "cpu"
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and precision in ("fp32", "bf16")
        and runs_natively(precision)
    )


def prepack_linears(model: torch.nn.Module, precision: str, device: torch.device) -> None:
    """Swap every linear layer of `model` for a `PrepackedLinear` in `precision`, in place, where
    `can_prepack`; the feed-forward blocks of GELU_AFTER_LINEAR get their GELU fused in."""
    if not can_prepack(precision, device):
        return
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    for module in model.modules():
        linear_name, gelu_name = GELU_AFTER_LINEAR.get(type(module).__name__, (None, None))
        if linear_name and _is_exact_gelu(getattr(module, gelu_name)):
            linear = getattr(module, linear_name)
            setattr(module, linear_name, PrepackedLinear(linear, dtype, activation="gelu"))
            setattr(module, gelu_name, torch.nn.Identity())
    for name, module in list(model.named_modules()):
        if isinstance(module, torch.nn.Linear):
            parent, _, attribute = name.rpartition(".")
            setattr(model.get_submodule(parent), attribute, PrepackedLinear(module, dtype))


def _is_exact_gelu(module: torch.nn.Module) -> bool:
    """transformers' GELU with torch's exact (erf) kernel, which oneDNN's fused one matches (by
    name: importing transformers here would slow down the features stage's cache hits)."""
    return type(module).__name__ == "GELUActivation" and module.act is torch.nn.functional.gelu


def compile_model(model: torch.nn.Module) -> None:
    """Compile `model` in place for any batch shape (inductor's on-disk caches keep the code)."""
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
