"""One labeled file (or hub split) read into a table, and the `Split` it becomes.

Local files: ``train``/``dev`` (or ``validation``)/``test`` with the suffix .tsv, .csv, .jsonl or
.parquet, holding a ``sentence`` (or ``text``, or ``data.text_column``) column and, except for an
unlabeled test file, a ``label`` (or ``data.label_column``) column of class ids or class names.
TSV files may be GLUE-style (header ``sentence\\tlabel``) or headerless ``sentence<TAB>label``.
Every error names the file and the line (or row).
"""

from __future__ import annotations

import csv
import logging
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import PipelineError
from pipeline.config import DataConfig
from pipeline.data.texts import SpooledTexts
from pipeline.io import decode_utf8

log = logging.getLogger(__name__)

SUFFIXES = (".tsv", ".csv", ".jsonl", ".parquet")
TEXT_COLUMNS = ("sentence", "text")
BINARY_NAMES = ("negative", "positive")
CHUNK_ROWS = 65_536  # rows parsed at a time: reading never holds the whole file as text


@dataclass
class Split:
    """Sentences of one split, class ids (None: unlabeled), class names, where they came from."""

    texts: Sequence[str]  # a list, or SpooledTexts for a large file
    labels: np.ndarray | None
    source: str
    names: list[str] = field(default_factory=lambda: list(BINARY_NAMES))

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: np.ndarray, source: str) -> Split:
        """The rows at `index`, in that order."""
        labels = None if self.labels is None else self.labels[index]
        return Split([self.texts[i] for i in index], labels, source, self.names)


@dataclass
class Table:
    """One file (or hub split) as read: texts, label values as text, where each row came from."""

    texts: Sequence[str]
    values: list[str] | None
    rows: array  # the row of each kept sentence (int64)
    path: Path
    first_line: int | None  # line of the first data row; None: say "row n" (hub, Parquet)

    def where(self, i: int) -> str:
        """Where the i-th kept row came from: "file, line n" or "source, row n"."""
        return _location(self.path, self.first_line, self.rows[i])

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
    """Parse one local file into a `Table`, CHUNK_ROWS rows at a time; errors name the file and
    line."""
    if not path.is_file():
        raise PipelineError(f"data file not found: {path}")
    if path.suffix == ".parquet":
        return _from_frames(_parquet_frames(path), path, role, None, cfg)
    first = _first_line(path)
    try:
        if path.suffix == ".jsonl":
            frames = pd.read_json(
                path, lines=True, dtype=False, chunksize=CHUNK_ROWS, encoding="utf-8-sig"
            )
            return _from_frames(frames, path, role, 1, cfg)
        sep = "," if path.suffix == ".csv" else "\t"
        known = (*TEXT_COLUMNS, cfg.text_column, cfg.label_column)
        has_header = any(c.strip() in known for c in first.split(sep))
        names = None if has_header else ["sentence", cfg.label_column][: len(first.split(sep))]
        frames = pd.read_csv(
            path,
            sep=sep,
            header=0 if has_header else None,
            names=names,
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE,
            skip_blank_lines=True,
            chunksize=CHUNK_ROWS,
            encoding="utf-8-sig",
        )
        return _from_frames(frames, path, role, 2 if has_header else 1, cfg)
    except UnicodeDecodeError:
        decode_utf8(path.read_bytes(), path)  # names the line of the bad byte
        raise
    except (ValueError, pd.errors.ParserError) as err:
        raise PipelineError(f"{path}: cannot parse: {err}") from None


def _first_line(path: Path) -> str:
    """The file's first line, decoded; an empty or blank file is an error."""
    with open(path, "rb") as handle:
        first = handle.readline()
        if not first.strip() and not any(line.strip() for line in handle):
            raise PipelineError(f"{path}: the file is empty")
    return decode_utf8(first, path).rstrip("\r\n")


def _parquet_frames(path: Path) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS):
            yield batch.to_pandas()
    except Exception as err:
        raise PipelineError(f"{path}: cannot read Parquet: {err}") from None


def table_from_frame(
    frame: pd.DataFrame, path: Path, role: str, first_line: int | None, cfg: DataConfig
) -> Table:
    """Check columns and sentences; errors name the file and line (or row).

    Empty sentences are an error, or dropped and counted when `cfg.empty` is "drop". A test split
    without a label column (or with GLUE's -1 for every row) is unlabeled.
    """
    return _from_frames([frame], path, role, first_line, cfg)


def _from_frames(
    frames: Iterable[pd.DataFrame], path: Path, role: str, first_line: int | None, cfg: DataConfig
) -> Table:
    """`table_from_frame` over the consecutive chunks of one file."""
    table = Table([], None, array("q"), path, first_line)
    values: list[str] = []
    unlabeled_test = role == "test"  # until a label other than -1 is seen
    n = 0
    text_col = label_col = None
    for frame in frames:
        frame.columns = [str(c).strip() for c in frame.columns]
        if text_col is None:
            text_col, label_col = _columns(frame, path, role, cfg)
        texts = []
        for row, value in enumerate(frame[text_col].tolist(), start=n):
            if isinstance(value, str) and value.strip():
                table.rows.append(row)
                texts.append(value.strip())
            elif cfg.empty == "error":
                raise PipelineError(
                    f"{_location(path, first_line, row)}: empty sentence "
                    "(set data.empty=drop to skip such rows)"
                )
        if n and isinstance(table.texts, list):  # a second chunk: a large file, keep it on disk
            table.texts = SpooledTexts(table.texts)
        table.texts.extend(texts)
        if label_col:
            labels = [str(v).strip() for v in frame[label_col].tolist()]
            unlabeled_test = unlabeled_test and set(labels) <= {"-1"}
            values.extend(labels[row - n] for row in table.rows[len(values) :])
        n += len(frame)
    if n == 0:
        raise PipelineError(f"{path}: no sentences (only a header?)")
    if len(table.rows) < n:
        log.warning("%s: dropped %d empty sentences", path, n - len(table.rows))
    if not table.rows:
        raise PipelineError(f"{path}: no sentences left")
    if label_col and not unlabeled_test:
        table.values = values
    return table


def _columns(frame: pd.DataFrame, path: Path, role: str, cfg: DataConfig) -> tuple[str, str | None]:
    """The text column and the label column (None: an unlabeled test file)."""
    candidates = (cfg.text_column,) if cfg.text_column else TEXT_COLUMNS
    text_col = next((c for c in candidates if c in frame.columns), None)
    if text_col is None:
        raise PipelineError(
            f"{path}: no {' or '.join(repr(c) for c in candidates)} column (columns: "
            f"{', '.join(frame.columns)}); expected a header 'sentence<TAB>label' or headerless "
            "'sentence<TAB>label' lines (or set data.text_column)"
        )
    label_col = cfg.label_column
    if label_col in frame.columns:
        return text_col, label_col
    if role != "test":
        raise PipelineError(
            f"{path}: no {label_col!r} column (columns: {', '.join(frame.columns)}; "
            "set data.label_column)"
        )
    return text_col, None


def _location(path: Path, first_line: int | None, row: int) -> str:
    return f"{path}, line {row + first_line}" if first_line else f"{path}, row {row + 1}"


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
