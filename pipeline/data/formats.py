"""How `pipeline.data.reader` reads each format: its columns, then its rows in blocks.

A line ends at "\\n" (its "\\r" dropped) and nowhere else; text is UTF-8, a BOM at the start
dropped; an empty line of a TSV, CSV or JSONL file is skipped (in JSONL, a blank one too). Every
error names the file and the line (in Parquet, the row).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from itertools import islice, repeat
from pathlib import Path
from typing import Any, BinaryIO

from pipeline import PipelineError
from pipeline.io import not_utf8

LINE_FORMATS = (".txt", ".tsv", ".csv", ".jsonl")
FORMATS = (*LINE_FORMATS, ".parquet")
BLOCK_LINES = 8192  # lines decoded (Parquet: rows converted from Arrow) at a time
CSV_FIELD_LIMIT = 2**31 - 1  # a sentence may be longer than csv's default limit of 128 KiB

# Given the columns to read (None: none), blocks of rows: each row's line (in Parquet, its row)
# and one list of values per column asked for.
Block = tuple[list[int], list[list[Any]]]
Select = Callable[[Sequence[str | None]], Iterator[Block]]


def where(source: str | Path, number: int) -> str:
    """``<file>, line <n>`` for a text file; ``<source>, row <n>`` for Parquet or a hub split."""
    unit = "line" if Path(source).suffix in LINE_FORMATS else "row"
    return f"{source}, {unit} {number}"


def open_input(path: Path, known: set[str | None], second: str) -> tuple[list[str], Select]:
    """The input's column names, and how to read its rows.

    A TSV or CSV file has a header when its first row holds a `known` name; without one its
    columns are ``sentence`` and `second`. A .txt file has one column, ``text``.
    """
    if path.suffix not in FORMATS:
        raise PipelineError(
            f"{path}: unknown input format {path.suffix!r}; use one of {', '.join(FORMATS)}"
        )
    if not path.is_file():
        raise PipelineError(f"input file not found: {path}")
    if path.suffix == ".txt":
        return ["text"], lambda keys: _text_lines(path, keys)
    if path.suffix == ".jsonl":
        return _jsonl(path)
    if path.suffix == ".parquet":
        return _parquet(path)
    tsv = path.suffix == ".tsv"
    first = next(
        (rows[0] for _, rows in (_tsv_lines(path) if tsv else _csv_rows(path)) if rows), None
    )
    if first is None:
        raise PipelineError(f"{path}: the file is empty")
    header = [name.strip() for name in (first.split("\t") if tsv else first)]
    has_header = not known.isdisjoint(header)
    columns = header if has_header else ["sentence", second][: len(header)]
    return columns, lambda keys: _delimited(path, columns, has_header, keys)


def _text_lines(path: Path, keys: Sequence[str | None]) -> Iterator[Block]:
    """A .txt file: each line a text, empty ones too."""
    for first, lines in file_blocks(path):
        numbers = list(range(first, first + len(lines)))
        yield numbers, [lines if key else [None] * len(lines) for key in keys]


def _delimited(
    path: Path, columns: list[str], has_header: bool, keys: Sequence[str | None]
) -> Iterator[Block]:
    """The `keys` columns of a TSV or CSV file; a row with another number of fields is an error."""
    index = [None if key is None else columns.index(key) for key in keys]
    width = len(columns)
    tsv = path.suffix == ".tsv"
    header_left = has_header
    for numbers, rows in _tsv_lines(path) if tsv else _csv_rows(path):
        if header_left and rows:
            numbers, rows, header_left = numbers[1:], rows[1:], False
        if not rows:
            continue
        fields = _tsv_columns(rows, width) if tsv else _csv_columns(rows, width)
        if fields is None:
            counts = [row.count("\t") + 1 for row in rows] if tsv else list(map(len, rows))
            wrong = next(i for i, n in enumerate(counts) if n != width)
            raise PipelineError(
                f"{where(path, numbers[wrong])}: {counts[wrong]} field"
                f"{'s' * (counts[wrong] != 1)}, expected {width} ({', '.join(columns)})"
            )
        yield numbers, [[None] * len(rows) if i is None else fields[i] for i in index]


def _tsv_lines(path: Path) -> Iterator[tuple[list[int], list[str]]]:
    """Blocks of a TSV file's lines that are not empty: their numbers and text."""
    for first, lines in file_blocks(path):
        if "" in lines:
            numbers = [n for n, line in enumerate(lines, first) if line]
            yield numbers, [line for line in lines if line]
        else:
            yield list(range(first, first + len(lines))), lines


def _tsv_columns(lines: list[str], width: int) -> list[list[str]] | None:
    """TSV lines as `width` columns of fields; None when a line has another number of them."""
    if set(map(str.count, lines, repeat("\t"))) != {width - 1}:
        return None
    fields = "\t".join(lines).split("\t")  # one split for the block, then a column a slice
    return [fields[i::width] for i in range(width)]


def _csv_columns(rows: list[list[str]], width: int) -> list[list[str]] | None:
    """CSV rows as `width` columns of fields; None when a row has another number of them."""
    if any(len(row) != width for row in rows):
        return None
    return [list(column) for column in zip(*rows, strict=True)]


def _csv_rows(path: Path) -> Iterator[tuple[list[int], list[list[str]]]]:
    """Blocks of a CSV file's rows that are not empty lines: their first lines and fields."""
    csv.field_size_limit(CSV_FIELD_LIMIT)
    lines = (line for _, block in file_blocks(path, keep_ends=True) for line in block)
    reader = csv.reader(lines, strict=True)
    numbers: list[int] = []
    rows: list[list[str]] = []
    number = 1
    try:
        for fields in reader:
            if fields:
                numbers.append(number)
                rows.append(fields)
            number = reader.line_num + 1
            if len(rows) == BLOCK_LINES:
                yield numbers, rows
                numbers, rows = [], []
    except csv.Error as err:  # its hint about newline= is for code that opens the file
        problem = str(err).split(" - ")[0]
        raise PipelineError(f"{where(path, number)}: not valid CSV ({problem})") from None
    yield numbers, rows


def _jsonl(path: Path) -> tuple[list[str], Select]:
    """A JSONL file: the keys of its first object, and rows (a missing key reads as None)."""
    first = next((records[0] for _, records in _objects(path) if records), None)
    if first is None:
        raise PipelineError(f"{path}: the file is empty")
    return list(first), lambda keys: (
        (numbers, [[record.get(key) for record in records] for key in keys])
        for numbers, records in _objects(path)
    )


def _objects(path: Path) -> Iterator[tuple[list[int], list[dict]]]:
    """Blocks of a JSONL file's lines that are not blank: their numbers and objects."""
    for first, lines in file_blocks(path):
        numbers, records = [], []
        for number, line in enumerate(lines, first):
            if line.strip():
                numbers.append(number)
                records.append(_object(line, where(path, number)))
        yield numbers, records


def _object(line: str, location: str) -> dict:
    """One JSONL line's object; anything else is an error naming its `location`."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise PipelineError(f"{location}: not JSON ({err.msg})") from None
    except RecursionError:
        raise PipelineError(f"{location}: not JSON (nested too deeply)") from None
    if not isinstance(record, dict):
        raise PipelineError(f"{location}: not a JSON object")
    return record


def _parquet(path: Path) -> tuple[list[str], Select]:
    """A Parquet file: its columns, and rows read a batch of columns at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise PipelineError(f"{path}: cannot read Parquet: {err}") from None

    def select(keys: Sequence[str | None]) -> Iterator[Block]:
        names = [key for key in dict.fromkeys(keys) if key]
        first = 1
        try:
            for batch in source.iter_batches(batch_size=BLOCK_LINES, columns=names):
                values = {name: batch.column(name).to_pylist() for name in names}
                n = batch.num_rows
                yield list(range(first, first + n)), [values.get(k, [None] * n) for k in keys]
                first += n
        except (pa.ArrowException, OSError) as err:
            raise PipelineError(f"{path}: cannot read Parquet: {err}") from None

    return source.schema_arrow.names, select


def file_blocks(path: Path, keep_ends: bool = False) -> Iterator[tuple[int, list[str]]]:
    """`line_blocks` of a file; a file that cannot be opened is a one-line error."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below, when the lines are read)
    except OSError as err:
        raise PipelineError(f"cannot read {path}: {err.strerror}") from None
    with handle:
        yield from line_blocks(handle, path, keep_ends)


def line_blocks(
    handle: BinaryIO, name: str | Path, keep_ends: bool = False
) -> Iterator[tuple[int, list[str]]]:
    """Blocks of lines, split at "\\n" only: the number of the first, and the lines ("\\r\\n"
    dropped unless `keep_ends`). A BOM at the start is dropped; a bad byte stops with its line."""
    first = 1
    while raw := list(islice(handle, BLOCK_LINES)):
        data = b"".join(raw)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise not_utf8(name, first + data.count(b"\n", 0, err.start), data[err.start]) from None
        if first == 1:
            text = text.removeprefix("\ufeff")
        if keep_ends:
            block = [line + "\n" for line in text.split("\n")]
            block[-1] = block[-1][:-1]
        else:
            block = text.replace("\r\n", "\n").split("\n")
        if not block[-1]:  # the block ends with a newline
            block.pop()
        yield first, block
        first += len(raw)
