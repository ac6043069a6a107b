"""Prepacked linear layers: oneDNN lays each weight matrix out for its CPU kernel once, at load,
instead of on every call, and the GELU after a feed-forward block's first linear layer runs
inside it. Only encoders that run packed batches are prepacked, with their token counts rounded
(`ROUND_ROWS_TO`): oneDNN compiles and caches a kernel per row count. Measurements:
docs/benchmarks.md ("Prepacked linear layers")."""

from __future__ import annotations

import torch

from pipeline.encoding.device import runs_natively
from pipeline.fast.versions import allowed

# feed-forward blocks whose forward is linear -> GELU: (linear, activation) attribute names
GELU_AFTER_LINEAR = {
    "BertIntermediate": ("dense", "intermediate_act_fn"),  # BERT, MiniLM
    "MPNetIntermediate": ("dense", "intermediate_act_fn"),
    "FFN": ("lin1", "activation"),  # DistilBERT
}
PACKED_FOR_ROWS = 4096  # oneDNN's layout hint; 1, 9 and 4,096 ran every row count alike
ROUND_ROWS_TO = 64  # packed batches' token counts, so oneDNN compiles few kernels


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
    whose torch build has oneDNN's prepacked linear layer (x86 builds do) and is a version this
    was written against (`pipeline.fast.versions`)."""
    return (
        device.type == "cpu"
        and precision in ("fp32", "bf16")
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and runs_natively(precision)
        and allowed("prepack")
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


def is_prepacked(model: torch.nn.Module) -> bool:
    """Whether `model`'s linear layers are `PrepackedLinear` ones."""
    return any(isinstance(module, PrepackedLinear) for module in model.modules())


def _is_exact_gelu(module: torch.nn.Module) -> bool:
    """transformers' GELU with torch's exact (erf) kernel, which oneDNN's fused one matches (by
    name: importing transformers here would slow down the features stage's cache hits)."""
    return type(module).__name__ == "GELUActivation" and module.act is torch.nn.functional.gelu
