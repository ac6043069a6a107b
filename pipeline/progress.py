"""Progress of long loops: a bar on a terminal (or in a notebook), a plain log line about every
10 s elsewhere, so a log file holds lines instead of thousands of carriage-return frames."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm.auto import tqdm

LOG_SECONDS = 10.0
LOG_FORMAT = "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"


class _Lines:
    """A stream for tqdm that writes each frame as one line (no carriage returns, no padding)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.strip("\r\n ")
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    disable: bool = False,
    file: TextIO | None = None,
) -> tqdm:
    """A tqdm bar on `file` (stderr): drawn on a terminal, else a log line every LOG_SECONDS."""
    stream = file or sys.stderr
    options: dict[str, Any] = {"total": total, "desc": desc, "unit": unit, "disable": disable}
    if tqdm.__module__ == "tqdm.notebook" or getattr(stream, "isatty", lambda: False)():
        return tqdm(iterable, file=stream, **options)
    known = total is not None or hasattr(iterable, "__len__")  # else tqdm's count-only line
    form = LOG_FORMAT if known else None
    return tqdm(iterable, file=_Lines(stream), mininterval=LOG_SECONDS, bar_format=form, **options)
