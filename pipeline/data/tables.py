"""One labeled file (or hub split) as a checked table of sentences, and the `Split` it becomes.

Local files: ``train``/``dev`` (or ``validation``)/``test`` with the suffix .tsv, .csv, .jsonl or
.parquet, holding a ``sentence`` (or ``text``, or ``data.text_column``) column and, except for an
unlabeled test file, a ``label`` (or ``data.label_column``) column of class ids or class names.
`pipeline.data.reader` reads them; here every sentence is checked with `text_error`, and a large
file's sentences are kept on disk. Every error names the file and the line (or row).
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline import PipelineError
from pipeline.config import DataConfig
from pipeline.data.formats import where
from pipeline.data.reader import Chunk, read_chunks
from pipeline.data.texts import SpooledTexts
from pipeline.labelable import EMPTY, text_error

log = logging.getLogger(__name__)

SUFFIXES = (".tsv", ".csv", ".jsonl", ".parquet")
BINARY_NAMES = ("negative", "positive")
CHUNK_ROWS = 65_536  # rows parsed at a time: reading never holds the whole file as text


@dataclass
class Split:
    """Sentences of one split, class ids (None: unlabeled), class names, where they came from."""

    texts: Sequence[str]  # a list, or SpooledTexts for a large file
    labels: np.ndarray | None
    source: str  # the file (or hub split) the sentences came from
    names: list[str] = field(default_factory=lambda: list(BINARY_NAMES))
    rows: np.ndarray | None = None  # which of its sentences (0-based, in order); None: all
    chosen: str = ""  # how those rows were chosen, for people ("held out 25%, seed 42")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def shown(self) -> str:
        """The source and how its rows were chosen, for messages and meta.json."""
        return f"{self.source} ({self.chosen})" if self.chosen else self.source

    def subset(self, index: np.ndarray, chosen: str) -> Split:
        """The rows at `index`, in that order; `chosen` says how they were chosen."""
        labels = None if self.labels is None else self.labels[index]
        rows = np.asarray(index) if self.rows is None else self.rows[index]
        texts = [self.texts[i] for i in index]
        chosen = f"{self.chosen}; {chosen}" if self.chosen else chosen
        return Split(texts, labels, self.source, self.names, rows, chosen)


@dataclass
class Table:
    """One file (or hub split) as read: texts, label values as text, where each row came from."""

    texts: Sequence[str]
    values: list[str] | None
    lines: array  # the line (Parquet, hub: the row) of each kept sentence (int64)
    path: Path

    def where(self, i: int) -> str:
        """Where the i-th kept row came from: "file, line n" or "source, row n"."""
        return where(self.path, self.lines[i])

    def encode(self, names: list[str], ids_allowed: bool) -> Split:
        """Class ids for the label values: a name from `names`, or (if allowed) its id."""
        if self.values is None:
            return Split(self.texts, None, str(self.path), names)
        index = {name: i for i, name in enumerate(names)}
        if ids_allowed:
            index |= {str(i): i for i in range(len(names))}
        labels = np.empty(len(self.values), dtype=np.int64)
        for i, value in enumerate(self.values):
            if value not in index:
                raise PipelineError(f"{self.where(i)}: label {value!r} is not {_expected(names)}")
            labels[i] = index[value]
        _report_duplicates(self.path, self.texts, labels)
        return Split(self.texts, labels, str(self.path), names)


def _expected(names: list[str]) -> str:
    if names == [str(i) for i in range(len(names))]:
        return " or ".join(names) if len(names) == 2 else f"a class id 0..{len(names) - 1}"
    if names == list(BINARY_NAMES):
        return "0 or 1 (negative, positive)"
    return f"one of {', '.join(names)} (set data.labels to name the classes)"


def find_split_file(folder: str | Path, split: str, required: bool = True) -> Path | None:
    """The file for `split` in `folder` (``validation`` may also be called ``dev``).

    A missing file is an error, or None when not `required`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"data folder not found: {folder}")
    stems = [split] + (
        ["dev"] if split == "validation" else ["validation"] if split == "dev" else []
    )
    for stem in stems:
        for suffix in SUFFIXES:
            if (folder / f"{stem}{suffix}").is_file():
                return folder / f"{stem}{suffix}"
    if not required:
        return None
    names = ", ".join(f"{stems[0]}{s}" for s in SUFFIXES)
    raise PipelineError(f"no file for split {split!r} in {folder} (looked for {names})")


def read_table(path: Path, role: str, cfg: DataConfig) -> Table:
    """Read one local file into a `Table`, CHUNK_ROWS rows at a time."""
    chunks = read_chunks(
        path,
        CHUNK_ROWS,
        cfg.text_column,
        label_column=cfg.label_column,
        labels_required=role != "test",
    )
    return table_from_chunks(chunks, Path(path), role, cfg)


def table_from_chunks(chunks: Iterable[Chunk], path: Path, role: str, cfg: DataConfig) -> Table:
    """Check every sentence of the consecutive chunks of one file (or hub split).

    A sentence that cannot be labeled (`text_error`: empty, not a string, not valid Unicode) is
    an error naming its line, or is dropped and counted when `cfg.empty` is "drop". A test split
    without a label column (or with GLUE's -1 for every row) is unlabeled.
    """
    table = Table([], None, array("q"), path)
    values: list[str] = []
    labeled = False
    unlabeled_test = role == "test"  # until a label other than -1 is seen
    n = 0
    for chunk in chunks:
        errors = list(map(text_error, chunk.texts))
        kept = [i for i, error in enumerate(errors) if error is None]
        if len(kept) < len(errors) and cfg.empty == "error":
            i, error = next((i, error) for i, error in enumerate(errors) if error)
            problem = "empty sentence" if error == EMPTY else f"sentence {error}"
            raise PipelineError(
                f"{where(path, chunk.lines[i])}: {problem} (set data.empty=drop to skip such rows)"
            )
        if n and isinstance(table.texts, list):  # a second chunk: a large file, keep it on disk
            table.texts = SpooledTexts(table.texts)
        table.texts.extend([chunk.texts[i].strip() for i in kept])
        table.lines.extend([chunk.lines[i] for i in kept])
        if chunk.labels is not None:
            labeled = True
            labels = [str(v).strip() for v in chunk.labels]
            unlabeled_test = unlabeled_test and set(labels) <= {"-1"}
            values.extend([labels[i] for i in kept])
        n += len(chunk.texts)
    if n == 0:
        raise PipelineError(f"{path}: no sentences (only a header?)")
    if len(table.lines) < n:
        log.warning("%s: dropped %d empty sentences", path, n - len(table.lines))
    if not table.lines:
        raise PipelineError(f"{path}: no sentences left")
    if labeled and not unlabeled_test:
        table.values = values
    return table


def _report_duplicates(path: Path, texts: Sequence[str], labels: np.ndarray) -> None:
    """Log repeated (sentence, label) rows and sentences that carry more than one label.

    Sentences are compared by their 64-bit hashes, so no set of a million strings is built.
    """
    keys = np.fromiter(map(hash, texts), dtype=np.int64, count=len(texts))
    with np.errstate(over="ignore"):  # wrapping around is fine for a hash
        pairs = len(np.unique(keys * 1_000_003 + labels))
    repeated = len(texts) - pairs
    conflicting = pairs - len(np.unique(keys))
    if repeated or conflicting:
        log.warning(
            "%s: %d duplicate rows, %d sentences with more than one label (kept as they are)",
            path,
            repeated,
            conflicting,
        )
