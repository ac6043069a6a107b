"""The labeling page's answers on disk: OUT, a data file that `make all DATA=` takes as train.

OUT holds a header and a row per labeled text (``sentence`` and ``label``, the class name), as
.csv (quoted as Python's csv module writes it), .tsv or .jsonl, by its suffix. Each answer is one
``write`` of a whole row to the end of the file followed by ``fsync``, before the answer is
acknowledged: a killed server loses no acknowledged answer, and a row is in the file whole or
not at all (a torn last line, after a power cut, is cut off on the next start). Skipped texts
go to ``<OUT>.skipped.jsonl`` (they are no training data), each with the number of labels
before it, so that undo after a restart knows which answer came last. Undo rewrites a file
under a temporary name and renames it into place, so it too is whole or untouched.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path

from pipeline import PipelineError
from pipeline.pool import read_answers

log = logging.getLogger(__name__)

FORMATS = (".csv", ".tsv", ".jsonl")


class Journal:
    """OUT and its skipped file: read once, then appended to (and rewritten by undo)."""

    def __init__(self, path: Path, names: list[str]) -> None:
        self.path, self.names = Path(path), list(names)
        if self.path.suffix not in FORMATS:
            raise PipelineError(f"OUT={path}: use a {', '.join(FORMATS)} file")
        self.skips_path = self.path.with_name(self.path.name + ".skipped.jsonl")

    def load(self) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """(text, class id) of each labeled text and (text, labels before it) of each skipped
        one, in the order given; creates OUT with its header when it is new."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PipelineError(f"cannot create {self.path.parent}: {err.strerror}") from None
        for path in (self.path, self.skips_path):
            _cut_torn_line(path)
        if not self.path.is_file() or self.path.stat().st_size == 0:
            self._rewrite(self.path, self._header())
        with open(self.path, encoding="utf-8", newline="") as handle:
            first = handle.readline()
        if self._header() and first != self._header():
            raise PipelineError(
                f"OUT={self.path} starts with {first.strip()!r}, not the header "
                f"{self._header().strip()!r} this page writes; name a new OUT file"
            )
        labeled: list[tuple[str, int]] = []
        if self.path.stat().st_size > len(self._header().encode()):
            answers = read_answers(self.path, self.names)
            labeled = [
                (text, int(k)) for text, k in zip(answers.texts, answers.labels, strict=True)
            ]
            labeled = [(text, k) for text, k in labeled if k >= 0]
        skipped = []
        if self.skips_path.is_file():
            for line in self.skips_path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    entry = json.loads(line)
                    skipped.append((entry["text"], int(entry["after"])))
        return labeled, skipped

    def append_label(self, text: str, k: int) -> None:
        """Add a labeled row to OUT, on disk when this returns."""
        _append(self.path, self._row(text, self.names[k]))

    def append_skip(self, text: str, after: int) -> None:
        """Record a skipped text, on disk when this returns."""
        _append(self.skips_path, json.dumps({"text": text, "after": after}) + "\n")

    def rewrite_labels(self, labeled: list[tuple[str, int]]) -> None:
        """OUT with exactly these rows (undo), replaced whole."""
        body = "".join(self._row(text, self.names[k]) for text, k in labeled)
        self._rewrite(self.path, self._header() + body)

    def rewrite_skips(self, skipped: list[tuple[str, int]]) -> None:
        """The skipped file with exactly these entries (undo), replaced whole."""
        lines = (json.dumps({"text": text, "after": after}) + "\n" for text, after in skipped)
        self._rewrite(self.skips_path, "".join(lines))

    def _header(self) -> str:
        return {".csv": "sentence,label\n", ".tsv": "sentence\tlabel\n", ".jsonl": ""}[
            self.path.suffix
        ]

    def _row(self, text: str, label: str) -> str:
        if self.path.suffix == ".jsonl":
            return json.dumps({"sentence": text, "label": label}, ensure_ascii=False) + "\n"
        if self.path.suffix == ".tsv":
            return f"{text}\t{label}\n"
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow([text, label])
        return buffer.getvalue()

    def _rewrite(self, path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            _sync_folder(path.parent)
        except OSError as err:
            raise PipelineError(f"cannot write {path}: {err.strerror}") from None


def tsv_safe(text: str) -> bool:
    """Whether a text can be a TSV row's field (no tab, no line break)."""
    return not any(ch in text for ch in "\t\n\r")


def _append(path: Path, row: str) -> None:
    """Append `row` with one write and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        data = row.encode("utf-8")
        if os.write(fd, data) != len(data):
            raise OSError(28, "short write")
        os.fsync(fd)
    finally:
        os.close(fd)


def _cut_torn_line(path: Path) -> None:
    """Drop a last line without its newline (a write cut by a power loss, never acknowledged)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    log.warning("label: %s ended in a torn line; cut it (%d bytes)", path, len(data) - keep)
    with open(path, "r+b") as handle:
        handle.truncate(keep)
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so a rename in it is on disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
