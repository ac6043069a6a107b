"""Read a batch-prediction input (.txt, .jsonl, .parquet) in chunks, checking every row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count, islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import PipelineError
from pipeline.data.tables import TEXT_COLUMNS
from pipeline.io import not_utf8, sha256_file

FORMATS = (".txt", ".jsonl", ".parquet")


@dataclass
class Chunk:
    """Rows `start` .. `start + len(texts) - 1` of the input: their texts (any value) and ids."""

    index: int
    start: int
    texts: list[Any]
    ids: list[Any] | None


def read_chunks(
    path: Path, chunk_rows: int, text_column: str | None = None, id_column: str | None = None
) -> Iterator[Chunk]:
    """The input's rows in chunks of `chunk_rows`, read lazily (errors name the file and line)."""
    rows = _rows(path, text_column, id_column)
    has_ids = _has_ids(path, text_column, id_column)
    for index in count():
        block = list(islice(rows, chunk_rows))
        if not block:
            return
        texts = [text for text, _ in block]
        ids = [i for _, i in block] if has_ids else None
        yield Chunk(index, index * chunk_rows, texts, ids)


def scan_input(path: Path, text_column: str | None = None, id_column: str | None = None) -> dict:
    """The input's identity (path, size, SHA-256, rows), after checking that every row parses."""
    if path.suffix not in FORMATS:
        raise PipelineError(
            f"{path}: unknown input format {path.suffix!r}; use one of {', '.join(FORMATS)}"
        )
    if not path.is_file():
        raise PipelineError(f"input file not found: {path}")
    rows = sum(1 for _ in _rows(path, text_column, id_column))
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


def _rows(path: Path, text_column: str | None, id_column: str | None) -> Iterator[tuple[Any, Any]]:
    """(text, id) per row; id is None without an id column."""
    if path.suffix == ".txt":
        for line in _lines(path):
            yield from ((text, None) for text in line.splitlines())
    elif path.suffix == ".jsonl":
        yield from _jsonl_rows(path, text_column, id_column)
    else:
        yield from _parquet_rows(path, text_column, id_column)


def _lines(path: Path) -> Iterator[str]:
    """Decoded lines (a BOM dropped); a bad byte stops with its line number, as predict.py does."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise not_utf8(path, number, raw[err.start]) from None


def _jsonl_rows(path: Path, text_column: str | None, id_column: str | None) -> Iterator[tuple]:
    text_key = None
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise PipelineError(f"{path}, line {number}: not JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise PipelineError(f"{path}, line {number}: not a JSON object")
        if text_key is None:
            text_key = _text_column(path, list(record), text_column)
        ident = record.get(id_column or "id")
        yield (
            record.get(text_key),
            ident if ident is None or isinstance(ident, str) else json.dumps(ident),
        )


def _parquet_rows(path: Path, text_column: str | None, id_column: str | None) -> Iterator[tuple]:
    try:
        source = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise PipelineError(f"{path}: cannot read Parquet: {err}") from None
    names = source.schema_arrow.names
    text_key = _text_column(path, names, text_column)
    id_key = id_column or "id"
    columns = [text_key] + ([id_key] if id_key in names else [])
    for batch in source.iter_batches(batch_size=8192, columns=columns):
        texts = batch.column(0).to_pylist()
        ids = batch.column(1).to_pylist() if len(columns) > 1 else [None] * len(texts)
        yield from zip(texts, ids, strict=True)


def _text_column(path: Path, names: list[str], wanted: str | None) -> str:
    candidates = (wanted,) if wanted else TEXT_COLUMNS
    found = next((c for c in candidates if c in names), None)
    if found is None:
        raise PipelineError(
            f"{path}: no {' or '.join(repr(c) for c in candidates)} column (has: "
            f"{', '.join(map(str, names))}); name the text column with --text-column"
        )
    return found


def _has_ids(path: Path, text_column: str | None, id_column: str | None) -> bool:
    """Whether the output gets an ``id`` column: the input has one (JSON: in its first row)."""
    if path.suffix == ".parquet":
        return (id_column or "id") in pq.ParquetFile(path).schema_arrow.names
    if path.suffix == ".jsonl":
        first = next((line for line in _lines(path) if line.strip()), "{}")
        return (id_column or "id") in json.loads(first)
    return False
