"""The one encode path: tokenize once, sort by length, cut token-budget batches, run, write back.

As sentence-transformers' `encode()`: an engine (torch: `encoding.encoder.Encoder`; ONNX Runtime:
`encoding.onnx_encoder.OnnxEncoder`) supplies only `tokenize(texts)` (ids, real-token counts and
character offsets from one tokenizer call: `tokenize` below, in windows cut by `cut_at`) and
`run(rows)` (one batch's vectors); `embed` does the rest. Pure numpy and `tokenizers`, so the
light runtime plans its batches exactly as the training stack does.
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
    """One tokenizer call's result for a list of texts: a row per window, one window per text
    unless a long text is chunked (`encoder.long_texts`), in which case its windows follow
    each other."""

    ids: list[np.ndarray]  # per row: token ids with the special tokens, at most max_length
    weights: np.ndarray  # per row: its real tokens (special tokens not counted)
    windows: np.ndarray  # per text: its rows
    counts: np.ndarray  # per text: real tokens read; 0: nothing to encode
    truncated: np.ndarray  # per text: cut at max_length (long_texts=truncate)
    offsets: list[np.ndarray] | None = None  # per row: (tokens, 2) character spans; (0, 0): special
    words: list[np.ndarray] | None = None  # per row: each token's pre-tokenizer word; -1: special

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def starts(self) -> np.ndarray:
        """Each text's first row."""
        return (np.cumsum(self.windows) - self.windows).astype(np.int64)

    def take(self, texts: Sequence[int]) -> Tokens:
        """The tokens of these texts, in this order."""
        texts = np.asarray(texts, dtype=np.int64)
        rows = [r for t in texts for r in range(self.starts[t], self.starts[t] + self.windows[t])]
        return Tokens(
            [self.ids[r] for r in rows],
            self.weights[rows],
            self.windows[texts],
            self.counts[texts],
            self.truncated[texts],
            None if self.offsets is None else [self.offsets[r] for r in rows],
            None if self.words is None else [self.words[r] for r in rows],
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


def cut_at(tokenizer: Any, max_length: int, long_texts: str, stride: int | None) -> Any:
    """Set a `tokenizers.Tokenizer` to cut texts into windows of `max_length` tokens, unpadded:
    consecutive windows share `stride` tokens (None: a quarter of a window) when long texts are
    chunked; only the first is kept when they are truncated. Both engines' one setting."""
    if stride is None:
        stride = (max_length - 2) // 4
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length, stride=stride if long_texts == "chunk" else 0)
    return tokenizer


def tokenize(tokenizer: Any, texts: Sequence[str], chunked: bool, offsets: bool = False) -> Tokens:
    """`texts` through a tokenizer set by `cut_at`, TOKENIZE_CHUNK at a time: every window of a
    text when `chunked`, else its first; `offsets` keeps each token's character span (Python
    string indexes) and word too."""
    stride = tokenizer.truncation["stride"]
    ids, weights, windows, counts, truncated, spans, words = [], [], [], [], [], [], []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        for encoding in tokenizer.encode_batch(list(texts[start : start + TOKENIZE_CHUNK])):
            rows = [encoding, *encoding.overflowing] if chunked else [encoding]
            real = [len(row.ids) - sum(row.special_tokens_mask) for row in rows]
            ids.extend(np.asarray(row.ids, dtype=np.int64) for row in rows)
            weights.extend(real)
            windows.append(len(rows))
            counts.append(sum(real) - stride * (len(rows) - 1))
            truncated.append(bool(encoding.overflowing) and not chunked)
            if offsets:
                spans.extend(np.asarray(row.offsets, dtype=np.int64).reshape(-1, 2) for row in rows)
                words.extend(
                    np.asarray([-1 if w is None else w for w in row.word_ids], dtype=np.int64)
                    for row in rows
                )
    return Tokens(
        ids,
        np.asarray(weights, dtype=np.int64),
        np.asarray(windows, dtype=np.int64),
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
    and all rows of a window (a chunked text's windows among them) are sorted by length and cut
    into batches together; a chunked text's vector is its windows' mean, weighted by their real
    tokens. The batches are a fixed function of the texts, tokenizer and token budget, so a
    caller can resume: `skip_batches` leaves the first batches (already in `out`) alone, and
    `on_batch(done, planned)` is called after each batch with the number of batches cut so far
    (a window holding a chunked text is written, reported and resumed as a whole). `run_window`
    runs a window's batches (default `run_batches`, here; `pipeline.scale.ray_engine` passes a
    Ray one).
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
            chunked = len(tokens.ids) > len(tokens)
            if chunked and skip < len(batches):  # its rows are not its texts: pool, then write
                rows = np.empty((len(tokens.ids), engine.dim), dtype=np.float32)
                for _, positions, vectors in run_window(engine, tokens.ids, batches, 0):
                    rows[positions] = vectors
                out[start : start + len(tokens)] = pool_windows(rows, tokens)
                skip = len(batches)
                if on_batch:
                    on_batch(planned + skip, planned + skip)
            bar.update(len(tokens) if chunked else sum(map(len, batches[:skip])))
            for done, positions, vectors in run_window(engine, tokens.ids, batches, skip):
                out[start + positions] = vectors
                bar.update(len(positions))
                if on_batch:
                    on_batch(planned + done, planned + len(batches))
            planned += len(batches)
    return out, truncated


def pool_windows(rows: np.ndarray, tokens: Tokens) -> np.ndarray:
    """One vector per text: its row's, or its windows' mean weighted by their real tokens."""
    out = rows[tokens.starts].copy()
    for text in np.flatnonzero(tokens.windows > 1):
        start = tokens.starts[text]
        part = slice(start, start + tokens.windows[text])
        weights = tokens.weights[part].astype(np.float32)
        out[text] = weights @ rows[part] / weights.sum()
    return out


def windows(engine: Engine, texts: Sequence[str] | Tokens) -> Iterator[tuple[int, Tokens]]:
    """(first position, tokens) of each window of WINDOW texts."""
    if isinstance(texts, Tokens):
        yield 0, texts
        return
    for start in range(0, len(texts), WINDOW):
        yield start, engine.tokenize(texts[start : start + WINDOW])


def plan(tokens: Tokens, budget: int, packed: bool = False) -> list[np.ndarray]:
    """The batches (positions, longest first) `embed` runs for these tokens."""
    lengths = np.fromiter(map(len, tokens.ids), dtype=np.int64, count=len(tokens.ids))
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
