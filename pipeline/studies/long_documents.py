"""The long-text study's documents (`pipeline.studies.long_texts`), built from held-out sentences.

There is no long-review data offline, so a document is 6 to 16 labeled sentences the classifier
never trained on (`held_out`), a majority label and fewer of the others (`compose`), labeled by
the majority: never a tie. A share of them open with their minority, so their first window often
says the opposite of the whole; the others are shuffled. `documents` draws them, seeded, until each
length bucket (in windows) is full; a document draws its sentences from all, the longer half or
the longest quarter, so long documents come too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline import PipelineError
from pipeline.config import Config
from pipeline.data.splits import Split, read_split
from pipeline.data.tables import find_split_file
from pipeline.encoding.batching import Tokens

log = logging.getLogger(__name__)

BUCKETS = ("1", "2", "3-4", ">4")  # document length in windows
SENTENCES = (6, 16)  # sentences per document, both included
BANDS = (0, 50, 75)  # a document draws its sentences from those at or above a length percentile
ROUNDS = 60  # draws of candidates before giving up on filling a bucket


@dataclass
class Documents:
    """Documents: text, label, each sentence's span and label, whether the minority opens it."""

    texts: list[str]
    labels: np.ndarray
    spans: list[list[tuple[int, int]]]
    sentence_labels: list[np.ndarray]
    minority_first: np.ndarray


def bucket(windows: int) -> str:
    """A document's length bucket, by its windows."""
    return "1" if windows == 1 else "2" if windows == 2 else "3-4" if windows <= 4 else ">4"


def held_out(config: Config, splits: dict[str, Split]) -> tuple[list[str], np.ndarray, list[str]]:
    """Labeled sentences the classifier never trains on: texts, class ids, where they came from."""
    if "eval" not in splits or splits["eval"].labels is None:
        raise PipelineError("the long-text study needs a labeled eval split")
    train, data = splits["train"], config.data
    sources = [splits["eval"]]
    if data.dir:
        if data.limit is not None:
            whole = read_split(find_split_file(data.dir, data.train_split), "train", data)
            rest = np.arange(min(data.limit, len(whole)), len(whole))
            sources.append(whole.subset(rest, f"past the first {data.limit}"))
        dev = find_split_file(data.dir, data.eval_split, required=False)
        if data.protocol == "holdout" and dev is not None:
            sources.append(read_split(dev, "eval", data))
    seen, texts, labels, shown = set(train.texts), [], [], []
    for split in sources:
        if split.names != train.names or split.labels is None:
            log.warning("long study: %s left out (other class names)", split.shown)
            continue
        before = len(texts)
        for text, label in zip(split.texts, split.labels.tolist(), strict=True):
            if text not in seen:  # each sentence once
                seen.add(text)
                texts.append(text)
                labels.append(int(label))
        shown.append(f"{split.shown}: {len(texts) - before}")
    return texts, np.asarray(labels, dtype=np.int64), shown


def compose(
    rng: np.random.Generator, pool: np.ndarray, labels: np.ndarray, minority_first: bool
) -> list[int] | None:
    """One document's sentences (indexes into `labels`, in order) from `pool`: a majority label,
    fewer sentences of the others, minority first or shuffled; None when `pool` lacks two labels."""
    classes = np.unique(labels[pool])
    if len(classes) < 2:
        return None
    n = int(rng.integers(SENTENCES[0], SENTENCES[1] + 1))
    minority = int(rng.integers(1, (n + 1) // 2))  # 1 .. under half: never a tie
    label = rng.choice(classes)
    major, minor = pool[labels[pool] == label], pool[labels[pool] != label]
    first = rng.choice(minor, minority, replace=minority > len(minor))
    order = np.concatenate(
        [first, rng.choice(major, n - minority, replace=n - minority > len(major))]
    )
    return (order if minority_first else rng.permutation(order)).tolist()


def joined(sentences: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The sentences as one text (each ended by a full stop unless it has one), and their spans."""
    pieces = [s if s.rstrip()[-1:] in ".!?" else f"{s} ." for s in sentences]
    spans, at = [], 0
    for piece in pieces:
        spans.append((at, at + len(piece)))
        at += len(piece) + 1
    return " ".join(pieces), spans


def documents(
    texts: list[str],
    labels: np.ndarray,
    lengths: np.ndarray,
    count_windows: Callable[[list[str]], np.ndarray],
    per_bucket: int,
    seed: int,
    minority_first: float = 0.5,
) -> Documents:
    """Up to `per_bucket` documents in each length bucket, drawn with `seed`; `count_windows`
    gives texts' windows, `lengths` each sentence's tokens (for the length bands)."""
    rng = np.random.default_rng(seed)
    bands = [np.flatnonzero(lengths >= np.percentile(lengths, p)) for p in BANDS]
    kept: dict[str, list[tuple[list[int], bool]]] = {name: [] for name in BUCKETS}
    for _ in range(ROUNDS):
        drawn = []
        for _ in range(4 * per_bucket):
            first = bool(rng.random() < minority_first)
            order = compose(rng, bands[int(rng.integers(len(bands)))], labels, first)
            if order is not None:
                drawn.append((order, first))
        windows = count_windows([joined([texts[i] for i in order])[0] for order, _ in drawn])
        for (order, first), count in zip(drawn, windows.tolist(), strict=True):
            if len(kept[bucket(count)]) < per_bucket:
                kept[bucket(count)].append((order, first))
        if all(len(docs) == per_bucket for docs in kept.values()):
            break
    chosen = [doc for name in BUCKETS for doc in kept[name]]
    built = [joined([texts[i] for i in order]) for order, _ in chosen]
    sentence_labels = [labels[order] for order, _ in chosen]
    return Documents(
        [text for text, _ in built],
        np.asarray([np.bincount(y).argmax() for y in sentence_labels], dtype=np.int64),
        [spans for _, spans in built],
        sentence_labels,
        np.asarray([first for _, first in chosen], dtype=bool),
    )


def first_window_disagrees(docs: Documents, tokens: Tokens) -> np.ndarray:
    """Per document: the labels of the characters its first window reads have another majority
    than the whole document's (tokens with offsets)."""
    out = np.zeros(len(docs.texts), dtype=bool)
    for i, start in enumerate(tokens.starts.tolist()):
        end = int(tokens.offsets[start][:, 1].max())
        read = np.zeros(int(docs.sentence_labels[i].max()) + 1)
        for (a, b), y in zip(docs.spans[i], docs.sentence_labels[i].tolist(), strict=True):
            read[y] += max(0, min(b, end) - a)
        out[i] = read.argmax() != docs.labels[i]
    return out
