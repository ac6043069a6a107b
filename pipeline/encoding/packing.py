"""Packed batches: sentences of several lengths in one forward pass, with no padding.

A padded batch of mixed lengths pays for its padding in every layer: 32 served sentences of GLUE
dev cost 1.31 padded tokens per real one in `embed`'s batches. Packed, the batch is one sequence
of all its tokens (position ids restart at each sentence), so the linear layers, which take most
of the time, see only real tokens; attention runs per run of equal-length sentences, each its own
call (SDPA; in bf16 on the CPU two batched matmuls, which are faster there), so no sentence
attends to another. This works for the encoders whose attention goes through transformers'
attention interface (BERT, DistilBERT, ...; `_supports_attention_backend`); the others (MPNet,
with its relative position bias) keep padded batches.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

PACKED = "packed_sdpa"  # the attention implementation's name in transformers' registries


def packed_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    packed_runs: list[tuple[int, int]] | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Attention over a packed sequence, one call per run of `packed_runs` ((count, length)
    pairs, in order); plain transformers SDPA when the batch is not packed (no `packed_runs`).
    A packed batch never drops out: the encoder is frozen, in eval mode, so `dropout` is 0."""
    if packed_runs is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    heads, tokens, head_dim = query.shape[1:]
    out = query.new_empty(tokens, heads, head_dim)  # what the model reshapes to (1, tokens, dim)
    start = 0
    for count, length in packed_runs:  # (1, heads, tokens, d) -> (count, heads, length, d)
        end = start + count * length
        q, k, v = (
            t[0, :, start:end].unflatten(1, (count, length)).transpose(0, 1)
            for t in (query, key, value)
        )
        attended = attend(q, k, v, scaling)
        out[start:end].view(count, length, heads, head_dim).copy_(attended.transpose(1, 2))
        start = end
    out[start:].zero_()  # a filler sentence (in no run) attends to nothing
    return out.unsqueeze(0), None


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None) -> torch.Tensor:
    """softmax(q kᵀ · scale) v. In bf16 on the CPU as two batched matmuls: SDPA's flash kernel
    there is 2-3x slower than them at these short lengths (and slower than its own fp32)."""
    if q.dtype != torch.bfloat16 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    scores = q @ k.transpose(-1, -2) * (scale if scale is not None else q.shape[-1] ** -0.5)
    return scores.softmax(dim=-1) @ v


AttentionInterface.register(PACKED, packed_attention)
AttentionMaskInterface.register(PACKED, sdpa_mask)  # padded batches get SDPA's mask


def can_pack(model: PreTrainedModel) -> bool:
    """Whether the model's attention goes through transformers' attention interface."""
    return bool(getattr(model, "_supports_attention_backend", False))


def pack(
    input_ids: torch.Tensor, mask: torch.Tensor, round_to: int = 1
) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    """A right-padded batch as one sequence: its token ids, position ids (from 0 in each
    sentence) and its runs of equal-length rows, (count, length) in order (one run per length
    when the rows are sorted). With `round_to` > 1 a filler sentence (token ids 0, in no run: it
    attends to nothing and nothing attends to it) tops the sequence up to `rounded_length`
    tokens."""
    real = mask.bool()
    positions = mask.cumsum(dim=1) - 1
    lengths = mask.sum(dim=1).tolist()
    runs = [(len(list(run)), length) for length, run in itertools.groupby(lengths)]
    ids, positions = input_ids[real], positions[real]
    filler = rounded_length(len(ids), round_to) - len(ids)
    if filler:
        ids = torch.cat([ids, ids.new_zeros(filler)])
        positions = torch.cat([positions, torch.arange(filler, device=positions.device)])
    return ids.unsqueeze(0), positions.unsqueeze(0), runs


def rounded_length(tokens: int, step: int) -> int:
    """`tokens` rounded up to a multiple of `step` // 8 up to `step`, past it of `step`."""
    unit = step if tokens > step else max(1, step // 8)
    return -(-tokens // unit) * unit


def unpack(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A packed layer output (1, tokens, dim) back in the padded batch's shape, zeros in padding
    (a filler sentence at the end left out)."""
    real = mask.bool()
    padded = hidden.new_zeros((*mask.shape, hidden.shape[-1]))
    padded[real] = hidden[0, : int(real.sum())]
    return padded
