"""One reader for every text input: features' data files, predict's --file and stdin, and batch
prediction's inputs, with one set of rules and messages.

Formats, by suffix: .txt (one text a line), .tsv (tab-separated, no quoting), .csv (quoted as
Python's csv module writes it), .jsonl (a JSON object a line) and .parquet. The rules:

- UTF-8, a BOM at the start dropped; a byte that is not UTF-8 stops with its line;
- a line ends at "\\n" or "\\r\\n" only: U+2028, U+0085 or a lone "\\r" stay inside their text;
- the text column is the one named, else ``sentence``, else ``text``;
- a TSV or CSV file has a header when its first row names a known column; without one its rows
  are ``sentence<TAB>label``;
- a .txt line is a text, even an empty one; an empty line of a TSV, CSV or JSONL file is skipped
  (in JSONL, a blank one too);
- every error names the file and the line (in Parquet, the row). The formats are read by
  `pipeline.data.formats`.

Rows come in chunks, so memory does not grow with the file. Texts, labels and ids are passed on
as read (any JSON or Parquet value): judging them is the caller's. Only the standard library is
imported here, and pyarrow for Parquet alone, so reading lines needs neither pandas nor pyarrow.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import PipelineError
from pipeline.data.formats import Block, file_blocks, line_blocks, open_input
from pipeline.io import sha256_file

TEXT_COLUMNS = ("sentence", "text")
SCAN_ROWS = 65_536  # rows a chunk when scanning an input


@dataclass
class Chunk:
    """The `index`-th run of consecutive rows of an input, from row `start` (0-based) on."""

    index: int
    start: int
    texts: list[Any]
    ids: list[Any] | None  # None: the input has no id column
    labels: list[Any] | None = None  # None: no label column asked for, or the input has none
    lines: list[int] = field(default_factory=list)  # each row's line (in Parquet its row, from 1)


def read_lines(source: str | Path) -> list[str]:
    """The texts of a file, one a line (blank ones too), or of stdin for ``-``."""
    blocks = (
        line_blocks(sys.stdin.buffer, "stdin") if str(source) == "-" else file_blocks(Path(source))
    )
    return [text for _, block in blocks for text in block]


def read_chunks(
    path: Path,
    chunk_rows: int,
    text_column: str | None = None,
    id_column: str | None = None,
    label_column: str | None = None,
    labels_required: bool = False,
) -> Iterator[Chunk]:
    """The input's rows in chunks of `chunk_rows`, read lazily.

    Texts come from `text_column` (see `pick_columns`; a .txt line is the text), ids from
    `id_column` (default ``id``) when the input has it, labels from `label_column` when asked
    for. JSON ids that are not strings become JSON text, so that ids of mixed types make one
    column.
    """
    path = Path(path)
    id_column = id_column or "id"
    known = {*TEXT_COLUMNS, text_column, id_column, label_column}
    columns, select = open_input(path, known, label_column or "label")
    wanted = None if path.suffix == ".txt" else text_column
    text, label = pick_columns(path, columns, wanted, label_column, labels_required)
    ident = id_column if id_column in columns else None
    rows = _rechunk(select([text, label, ident]), chunk_rows)
    for index, (lines, (texts, labels, ids)) in enumerate(rows):
        if ident and path.suffix == ".jsonl":
            ids = [i if i is None or isinstance(i, str) else json.dumps(i) for i in ids]
        yield Chunk(
            index,
            index * chunk_rows,
            texts,
            ids if ident else None,
            labels if label else None,
            lines,
        )


def _rechunk(blocks: Iterator[Block], size: int) -> Iterator[Block]:
    """The rows of `blocks` again, in blocks of exactly `size` (the last may be shorter)."""
    lines: list[int] = []
    values: list[list[Any]] = []
    for numbers, columns in blocks:
        values = values or [[] for _ in columns]
        start = 0
        while start < len(numbers):
            stop = start + min(size - len(lines), len(numbers) - start)
            lines += numbers[start:stop]
            for kept, column in zip(values, columns, strict=True):
                kept += column[start:stop]
            start = stop
            if len(lines) == size:
                yield lines, values
                lines, values = [], [[] for _ in columns]
    if lines:
        yield lines, values


def scan_input(path: Path, text_column: str | None = None, id_column: str | None = None) -> dict:
    """The input's identity (path, size, SHA-256, rows), after checking that every row parses."""
    chunks = read_chunks(path, SCAN_ROWS, text_column, id_column)
    rows = sum(len(chunk.texts) for chunk in chunks)
    if not rows:
        raise PipelineError(f"{path}: no rows to label (the file is empty)")
    return {
        "path": str(path.resolve()),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "rows": rows,
        "text_column": text_column,
        "id_column": id_column,
    }


def pick_columns(
    source: str | Path,
    columns: Sequence[str],
    text_column: str | None = None,
    label_column: str | None = None,
    labels_required: bool = False,
) -> tuple[str, str | None]:
    """The text column (`text_column`, else ``sentence``, else ``text``) and the label column.

    The label column is None when not asked for, or when the input lacks it and may (an unlabeled
    test file); lacking it otherwise is an error.
    """
    candidates = (text_column,) if text_column else TEXT_COLUMNS
    text = next((c for c in candidates if c in columns), None)
    names = ", ".join(map(str, columns))
    if text is None:
        raise PipelineError(
            f"{source}: no {' or '.join(map(repr, candidates))} column (columns: {names}); "
            "name it in a header, or with data.text_column (features) or --text-column "
            "(batch_predict)"
        )
    if label_column in columns:
        return text, label_column
    if label_column and labels_required:
        raise PipelineError(
            f"{source}: no {label_column!r} column (columns: {names}; set data.label_column)"
        )
    return text, None
