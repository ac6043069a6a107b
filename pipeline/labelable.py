"""One definition of a labelable text, used by every entry point before a text joins a batch.

A text is labelable when it is a `str`, is valid Unicode (no unpaired surrogates: JSON's
``"\\ud800"`` or a command-line byte that is not UTF-8 give one), and the encoder's tokenizer
finds at least one token in it. `text_error` makes the checks that need no tokenizer (type,
Unicode, and text that is only whitespace, control or format characters such as zero-width
spaces); `split_labelable` adds the token count from the engine's one tokenization, and hands
those tokens on to be encoded. A bad text gets its own error and never affects another text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pipeline import PipelineError
from pipeline.encoding.batching import Tokens

NOT_A_STRING = "not a string"
EMPTY = "empty text"
INVISIBLE = ("Z", "C")  # Unicode categories with nothing to read: separators, control, format
Tokenize = Callable[[list[str]], Tokens]  # an engine's `tokenize`


def text_error(text: object) -> str | None:
    """Why `text` cannot be labeled, or None when it may be tokenized."""
    if not isinstance(text, str):
        return NOT_A_STRING
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return (
            f"not valid Unicode (unpaired surrogate U+{ord(text[err.start]):04X} at "
            f"character {err.start + 1})"
        )
    if all(unicodedata.category(char)[0] in INVISIBLE for char in text):
        return EMPTY
    return None


def printable(text: object) -> object:
    """`text` with unpaired surrogates written as escapes (``\\ud800``), so it can be printed or
    sent as UTF-8 JSON; anything else is returned as it is."""
    if isinstance(text, str):
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def split_labelable(texts: Sequence[Any], tokenize: Tokenize) -> tuple[list[str | None], Tokens]:
    """`text_error` for each text, "empty text" for one the tokenizer finds no token in, and the
    tokens of the labelable texts, in order (one tokenizer call for all of them)."""
    if isinstance(texts, str):
        raise TypeError("expected a list of texts, not one string")
    errors = [text_error(text) for text in texts]
    candidates = [i for i, error in enumerate(errors) if error is None]
    tokens = tokenize([texts[i] for i in candidates])
    for i, count in zip(candidates, tokens.counts, strict=True):
        if count == 0:
            errors[i] = EMPTY
    return errors, tokens.take(np.flatnonzero(tokens.counts > 0))


def labelable_tokens(texts: Sequence[Any], tokenize: Tokenize) -> Tokens:
    """The tokens of `texts`, or a clear error naming the first text that cannot be labeled."""
    errors, tokens = split_labelable(texts, tokenize)
    for i, error in enumerate(errors):
        if error:
            raise PipelineError(f"text {i}: {error}; there is nothing to label")
    return tokens
