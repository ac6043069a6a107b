"""CPU fast paths on top of the core encoder (an extra: the core imports it only inside functions).

- `packing`: sentences of several lengths in one forward pass, with no padding;
- `prepack`: linear layers whose weights oneDNN laid out once, at load, with the GELU fused in;
- `int8`: dynamic int8 linear layers (torchao), smoothed SmoothQuant-style;
- `versions`: the library versions they were written against; elsewhere packing and prepacking
  step aside (padded batches, torch's linear layers) and int8 is an error;
- `recipe`: how bf16 and int8 run, for the features fingerprint.

Why each is built as it is, with the measurements: docs/benchmarks.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.fast.versions import allowed

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def pack_where_possible(model: PreTrainedModel) -> None:
    """Let `model` run packed batches if it can and the installed transformers is one packing was
    written against (else it keeps padded batches, with one warning per process)."""
    if allowed("packing"):
        from pipeline.fast.packing import can_pack, enable_packing

        if can_pack(model):
            enable_packing(model)


def runs_packed(model: PreTrainedModel) -> bool:
    """Whether `model` runs packed batches (`pack_where_possible`)."""
    if not allowed("packing"):
        return False
    from pipeline.fast.packing import runs_packed as packed

    return packed(model)
