"""Packed batches: sentences of several lengths in one forward pass, with no padding.

A padded batch of mixed lengths pays for its padding in every layer. Packed, the batch is one
sequence of all its tokens (position ids restart at each sentence), so the linear layers, which
take most of the time, see only real tokens; attention runs per run of equal-length sentences,
each its own call, so no sentence attends to another. This works for the encoders whose attention
goes through transformers' attention interface (BERT, DistilBERT, ...;
`_supports_attention_backend`) and for MPNet, whose relative position bias transformers adds
outside that interface: `PackedMPNetModel` gives each run its own bias. The others keep padded
batches. It uses transformers internals: import it only where `versions.allowed("packing")`.
Measurements: docs/benchmarks.md ("Packed batches").
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.mpnet.modeling_mpnet import (
    MPNetEncoder,
    MPNetModel,
    MPNetSelfAttention,
)

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
    return attend_runs(query, key, value, packed_runs, scaling), None


def attend_runs(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    runs: list[tuple[int, int]],
    scale: float | None,
    bias: Callable[[int], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Attention of a packed sequence ((1, heads, tokens, d) each), one call per run of
    (count, length) sentences, with `bias(length)` ((1, heads, length, length)) added to the
    scores if given: (1, tokens, heads, d)."""
    heads, tokens, head_dim = query.shape[1:]
    out = query.new_empty(tokens, heads, head_dim)  # what the model reshapes to (1, tokens, dim)
    start = 0
    for count, length in runs:  # (1, heads, tokens, d) -> (count, heads, length, d)
        end = start + count * length
        q, k, v = (
            t[0, :, start:end].unflatten(1, (count, length)).transpose(0, 1)
            for t in (query, key, value)
        )
        attended = attend(q, k, v, scale, bias(length) if bias else None)
        out[start:end].view(count, length, heads, head_dim).copy_(attended.transpose(1, 2))
        start = end
    out[start:].zero_()  # a filler sentence (in no run) attends to nothing
    return out.unsqueeze(0)


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float | None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """softmax(q kᵀ · scale + bias) v. In bf16 on the CPU as two batched matmuls, which are
    faster there than SDPA's flash kernel at these short lengths."""
    if bias is not None:
        bias = bias.to(q.dtype)
    if q.dtype != torch.bfloat16 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
    scores = q @ k.transpose(-1, -2) * (scale if scale is not None else q.shape[-1] ** -0.5)
    return (scores if bias is None else scores + bias).softmax(dim=-1) @ v


AttentionInterface.register(PACKED, packed_attention)
AttentionMaskInterface.register(PACKED, sdpa_mask)  # padded batches get SDPA's mask


class RunBiases:
    """MPNet's relative position biases for a packed batch's runs, one (1, heads, length, length)
    tensor per sentence length, made once per forward pass and shared by all its layers."""

    def __init__(self, runs: list[tuple[int, int]], encoder: MPNetEncoder, like: torch.Tensor):
        self.runs, self.encoder, self.like, self.cache = runs, encoder, like, {}

    def __call__(self, length: int) -> torch.Tensor:
        """The bias for sentences of `length` tokens."""
        if length not in self.cache:  # compute_position_bias reads only its input's shape
            self.cache[length] = self.encoder.compute_position_bias(self.like.new_empty(1, length))
        return self.cache[length]


class PackedMPNetSelfAttention(MPNetSelfAttention):
    """MPNet's self-attention, which also takes a packed batch (its `position_bias` a RunBiases)."""

    def forward(self, hidden_states, attention_mask=None, position_bias=None, **kwargs):
        """Per-run attention for a packed batch; transformers' own otherwise."""
        if not isinstance(position_bias, RunBiases):
            return super().forward(hidden_states, attention_mask, position_bias, **kwargs)
        shape = (1, hidden_states.shape[1], -1, self.attention_head_size)
        q, k, v = (
            proj(hidden_states).view(shape).transpose(1, 2) for proj in (self.q, self.k, self.v)
        )
        scale = self.attention_head_size**-0.5
        return (self.o(attend_runs(q, k, v, position_bias.runs, scale, position_bias).flatten(2)),)


class PackedMPNetModel(MPNetModel):
    """MPNetModel, which also takes a packed batch (`packed_runs`). transformers computes MPNet's
    relative position bias for the whole sequence in its encoder, outside the attention
    interface: packed, that would be one bias over all the batch's tokens (12 x 4,096² floats)."""

    def forward(self, input_ids=None, position_ids=None, packed_runs=None, **kwargs):
        """The packed forward pass (embeddings, then the layers with per-run biases); transformers'
        own when the batch is not packed."""
        if packed_runs is None:
            return super().forward(input_ids=input_ids, position_ids=position_ids, **kwargs)
        padding = self.embeddings.padding_idx  # MPNet's positions start after its pad id
        hidden = self.embeddings(input_ids=input_ids, position_ids=position_ids + padding + 1)
        biases, states = RunBiases(packed_runs, self.encoder, input_ids), [hidden]
        for layer in self.encoder.layer:
            hidden = layer(hidden, None, biases)[0]
            states.append(hidden)
        hidden_states = tuple(states) if kwargs.get("output_hidden_states") else None
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=hidden_states)


def can_pack(model: PreTrainedModel) -> bool:
    """Whether the model can run packed batches: its attention goes through transformers'
    attention interface, or it is MPNet (through the classes above)."""
    return isinstance(model, MPNetModel) or bool(
        getattr(model, "_supports_attention_backend", False)
    )


def enable_packing(model: PreTrainedModel) -> None:
    """Let `model` (one that `can_pack`) run packed batches from now on."""
    if not isinstance(model, MPNetModel):
        model.set_attn_implementation(PACKED)
        return
    model.__class__ = PackedMPNetModel  # same weights and modules, a forward that also packs
    for module in model.modules():
        if type(module) is MPNetSelfAttention:
            module.__class__ = PackedMPNetSelfAttention


def runs_packed(model: PreTrainedModel) -> bool:
    """Whether `model` runs packed batches (`enable_packing`)."""
    return isinstance(model, PackedMPNetModel) or model.config._attn_implementation == PACKED


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
