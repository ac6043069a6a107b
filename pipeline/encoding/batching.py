"""The one encode path: tokenize once, sort by length, cut token-budget batches, run, write back.

As sentence-transformers' `encode()`: an engine (torch: `encoding.encoder.Encoder`; ONNX Runtime:
`encoding.onnx_encoder.OnnxEncoder`) supplies only `tokenize(texts)` (ids, real-token counts and
character offsets from one tokenizer call: `tokenize` below) and `run(rows)` (one batch's
vectors); `embed` does the rest. Pure numpy and `tokenizers`, so the light runtime plans its
batches exactly as the training stack does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

WINDOW = 65_536  # texts tokenized, sorted and batched together, so memory does not grow with n
TOKENIZE_CHUNK = 8192  # texts given to the tokenizer in one call (only what `Tokens` holds is kept)
MAX_PADDING = 0.25  # at most this share of a batch's tokens may be padding
SMALL_BATCH_TOKENS = 512  # a batch of one length below this takes shorter sentences too


@dataclass
class Tokens:
    """One tokenizer call's result for a list of texts, a row per text."""

    ids: list[np.ndarray]  # token ids with the special tokens, cut at max_length
    counts: np.ndarray  # real tokens read (special tokens not counted); 0: nothing to encode
    truncated: np.ndarray  # bool: the text was cut at max_length
    offsets: list[np.ndarray] | None = None  # (tokens, 2) character spans; (0, 0): special
    words: list[np.ndarray] | None = None  # the pre-tokenizer's word of each token; -1: special

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: Sequence[int]) -> Tokens:
        """The tokens of these rows, in this order."""
        return Tokens(
            [self.ids[i] for i in rows],
            self.counts[list(rows)],
            self.truncated[list(rows)],
            None if self.offsets is None else [self.offsets[i] for i in rows],
            None if self.words is None else [self.words[i] for i in rows],
        )


class Engine(Protocol):
    """What `embed` needs of an engine."""

    batch_tokens: int  # tokens per batch
    packed: bool  # batches run packed (no padding, any lengths: `pipeline.fast.packing`)

    @property
    def dim(self) -> int: ...

    def tokenize(self, texts: Sequence[str], offsets: bool = False) -> Tokens: ...

    def run(self, rows: list[np.ndarray]) -> np.ndarray: ...


# runs a window's batches from a given one on: yields (batches done, positions, vectors) in order
WindowRunner = Callable[
    [Any, list[np.ndarray], list[np.ndarray], int], Iterator[tuple[int, np.ndarray, np.ndarray]]
]


def tokenize(tokenizer: Any, texts: Sequence[str], offsets: bool = False) -> Tokens:
    """`texts` through a `tokenizers.Tokenizer` set to truncate at max_length, TOKENIZE_CHUNK at a
    time; `offsets` keeps each token's character span (Python string indexes) and word too."""
    ids, counts, truncated, spans, words = [], [], [], [], []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        for encoding in tokenizer.encode_batch(list(texts[start : start + TOKENIZE_CHUNK])):
            ids.append(np.asarray(encoding.ids, dtype=np.int64))
            counts.append(len(encoding.ids) - sum(encoding.special_tokens_mask))
            truncated.append(bool(encoding.overflowing))
            if offsets:
                spans.append(np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2))
                word_ids = [-1 if word is None else word for word in encoding.word_ids]
                words.append(np.asarray(word_ids, dtype=np.int64))
    return Tokens(
        ids,
        np.asarray(counts, dtype=np.int64),
        np.asarray(truncated, dtype=bool),
        spans if offsets else None,
        words if offsets else None,
    )


def embed(
    engine: Engine,
    texts: Sequence[str] | Tokens,
    out: np.ndarray | None = None,
    progress: bool = False,
    skip_batches: int = 0,
    on_batch: Callable[[int, int], None] | None = None,
    run_window: WindowRunner | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for `texts` in input order (into `out` if given) and the number truncated.

    Texts are tokenized a window of WINDOW at a time (already tokenized `Tokens` are one window),
    sorted by length and cut into batches within the window. The batches are a fixed function of
    the texts, tokenizer and token budget, so a caller can resume: `skip_batches` leaves the first
    batches (already in `out`) alone, and `on_batch(done, planned)` is called after each batch
    with the number of batches cut so far. `run_window` runs a window's batches (default
    `run_batches`, here; `pipeline.scale.ray_engine` passes a Ray one).
    """
    from pipeline.progress import progress_bar

    run_window = run_window or run_batches
    if out is None:
        out = np.empty((len(texts), engine.dim), dtype=np.float32)
    truncated = planned = 0
    with progress_bar(total=len(texts), unit="sent", disable=not progress, desc="encoding") as bar:
        for start, tokens in windows(engine, texts):
            batches = plan(tokens, engine.batch_tokens, engine.packed)
            truncated += int(tokens.truncated.sum())
            skip = min(len(batches), max(0, skip_batches - planned))
            bar.update(sum(map(len, batches[:skip])))
            if skip < len(batches):
                for done, positions, vectors in run_window(engine, tokens.ids, batches, skip):
                    out[start + positions] = vectors
                    bar.update(len(positions))
                    if on_batch:
                        on_batch(planned + done, planned + len(batches))
            planned += len(batches)
    return out, truncated


def windows(engine: Engine, texts: Sequence[str] | Tokens) -> Iterator[tuple[int, Tokens]]:
    """(first position, tokens) of each window of WINDOW texts."""
    if isinstance(texts, Tokens):
        yield 0, texts
        return
    for start in range(0, len(texts), WINDOW):
        yield start, engine.tokenize(texts[start : start + WINDOW])


def plan(tokens: Tokens, budget: int, packed: bool = False) -> list[np.ndarray]:
    """The batches (positions, longest first) `embed` runs for these tokens."""
    lengths = np.fromiter(map(len, tokens.ids), dtype=np.int64, count=len(tokens))
    return token_budget_batches(np.argsort(-lengths, kind="stable"), lengths, budget, packed)


def run_batches(
    engine: Engine, ids: list[np.ndarray], batches: list[np.ndarray], skip: int = 0
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Run a window's batches from `skip` on, here; yield (batches done, positions, vectors)."""
    for done, batch in enumerate(batches[skip:], start=skip + 1):
        yield done, batch, engine.run([ids[i] for i in batch])


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
