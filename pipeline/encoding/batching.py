"""Length-sorted, token-budget batches: the plan every engine (torch, ONNX Runtime) runs.

Pure numpy, so the light runtime plans its batches exactly as the training stack does.
"""

from __future__ import annotations

import numpy as np

MAX_PADDING = 0.25  # at most this share of a batch's tokens may be padding
SMALL_BATCH_TOKENS = 512  # a batch of one length below this takes shorter sentences too


def token_budget_batches(
    order: np.ndarray,
    lengths: np.ndarray,
    budget: int,
    packed: bool = False,
) -> list[np.ndarray]:
    """Cut `order` (longest first) into batches of at most `budget` tokens.

    Packed batches have no padding: each takes the next sentences while their tokens fit. A
    padded batch takes sentences of its first length up to the budget: no padding, no attention
    mask. Only when they make a small batch (under SMALL_BATCH_TOKENS) does it go on into shorter
    sentences, while padding stays within MAX_PADDING of its tokens. So a set runs almost all
    in equal-length batches, and a few sentences of many lengths (a served request) still run in
    few passes.
    """
    batches, start = [], 0
    if packed:
        ends = np.cumsum(lengths[order])  # tokens up to and including each sentence
        while start < len(order):
            before = ends[start - 1] if start else 0
            end = max(start + 1, int(np.searchsorted(ends, before + budget, side="right")))
            batches.append(order[start:end])
            start = end
        return batches
    while start < len(order):
        longest = int(lengths[order[start]])
        end = min(start + max(1, budget // max(longest, 1)), len(order))
        room = lengths[order[start:end]]  # the sentences that would fit at this length
        size = int(np.searchsorted(-room, -longest, side="right"))  # those of this length
        if size < len(room) and size * longest < SMALL_BATCH_TOKENS:  # a small batch: go on
            padded = longest * np.arange(1, len(room) + 1)
            within = padded - np.cumsum(room) <= MAX_PADDING * padded  # a prefix of True
            size = len(room) if within.all() else int(np.argmin(within))
        batches.append(order[start : start + size])
        start += size
    return batches


def pad_ids(rows: list[np.ndarray], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token ids to the longest row; return ids and attention mask (int64)."""
    width = max(map(len, rows))
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return input_ids, mask
