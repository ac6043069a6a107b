"""The one builder of result rows: what every entry point answers for each text it was given.

A row is {"text", "label", "probability", "p_positive" (two classes), "probabilities", "tokens",
"windows", and "truncated": true when only its first window was read} for a labeled text, or
{"text", "error"} for one that cannot be labeled: nothing hides what was read.
`Classifier.results`, the HTTP service and predict.py answer rows; batch prediction writes
`columns` of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.encoding.batching import Tokens
from pipeline.labelable import printable


def result_rows(
    texts: Sequence[Any],
    errors: Sequence[str | None],
    proba: np.ndarray,
    names: list[str],
    read: Tokens,
) -> list[dict[str, Any]]:
    """One row per text; `proba` and `read` (what was read) hold a row for each text without an
    error, in order."""
    rows: list[dict[str, Any]] = []
    scored = iter(proba)
    seen = iter(
        zip(read.counts.tolist(), read.windows.tolist(), read.truncated.tolist(), strict=True)
    )
    for text, error in zip(texts, errors, strict=True):
        row: dict[str, Any] = {"text": printable(text)}
        if error is not None:
            row["error"] = error
        else:
            p = next(scored)
            top = int(p.argmax())
            row.update(label=names[top], probability=float(p[top]))
            if len(names) == 2:
                row["p_positive"] = float(p[1])
            row["probabilities"] = dict(zip(names, p.tolist(), strict=True))
            row["tokens"], row["windows"], truncated = next(seen)
            if truncated:
                row["truncated"] = True
        rows.append(row)
    return rows


def columns(rows: list[dict[str, Any]], names: list[str]) -> dict[str, list]:
    """The rows as columns (no text): label, probability, ``p_<class>`` per class, tokens,
    windows, truncated, error."""
    empty: dict[str, float] = {}
    return {
        "label": [row.get("label") for row in rows],
        "probability": [row.get("probability") for row in rows],
        **{
            f"p_{name}": [row.get("probabilities", empty).get(name) for row in rows]
            for name in names
        },
        "tokens": [row.get("tokens") for row in rows],
        "windows": [row.get("windows") for row in rows],
        "truncated": [row.get("truncated", False) if "label" in row else None for row in rows],
        "error": [row.get("error") for row in rows],
    }
