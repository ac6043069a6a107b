"""Sentences kept on disk: a read-only list of strings whose memory does not grow with its length.

Reading a large data file (more than one chunk of rows) puts its sentences here instead of in a
Python list, where each costs a str object and a pointer (over 100 MB for a million SST-2
phrases). Here a sentence costs 8 bytes of memory (its end offset); its UTF-8 bytes go to an
unnamed temporary file, and a slice is one read of a contiguous block, so a window is cheap.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate, pairwise
from typing import Any

BLOCK = 65_536  # texts read at a time when iterating


class SpooledTexts(Sequence[str]):
    """A sequence of strings in a temporary file, with their end offsets in memory."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (lives with the object, then deleted)
        self._ends = array("q")
        self.extend(texts)

    def extend(self, texts: Iterable[str]) -> None:
        """Append `texts` at the end."""
        data = [text.encode() for text in texts]
        start = self._ends[-1] if self._ends else 0
        os.pwrite(self._file.fileno(), b"".join(data), start)
        self._ends.extend(list(accumulate(map(len, data), initial=start))[1:])

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, key: Any) -> Any:
        """One text for an index; a list of texts for a slice (one read for a plain slice)."""
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            if start >= stop:
                return []
            first = self._ends[start - 1] if start else 0
            block = os.pread(self._file.fileno(), self._ends[stop - 1] - first, first)
            bounds = [0, *(end - first for end in self._ends[start:stop])]
            return [block[a:b].decode() for a, b in pairwise(bounds)]
        index = range(len(self))[key]  # negative indexes, IndexError
        return self[index : index + 1][0]

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), BLOCK):
            yield from self[start : start + BLOCK]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __reduce__(self) -> tuple:
        """Pickled (to another process) as a plain list: the file does not travel."""
        return list, (list(self),)
