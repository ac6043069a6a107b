"""ERASER's faithfulness measures (DeYoung et al., 2020) and plausibility, for `explain_study`.

Comprehensiveness: the drop of the predicted class's probability when a ranking's top-k words are
removed (higher: better); sufficiency: the drop when only they are kept (lower: better); both as
AOPC over k in K_PERCENT of a sentence's words (at least one). The texts are plain strings scored
by `Classifier.results`: a removed word becomes a space, kept words are joined by spaces, and a
text with nothing left gets the empty input's probability. Plausibility: how often a word's sign
agrees with a one-word phrase's human label (GLUE SST-2's train split holds them).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classifier import Classifier

K_PERCENT = (1, 5, 10, 20, 50)
Words = list[tuple[int, int]]  # a sentence's word spans


def one_word_labels(path: Path) -> dict[str, int]:
    """GLUE SST-2's one-word phrases (lowercased) and their majority label; ties left out."""
    votes: dict[str, Counter] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(words := row["sentence"].split()) == 1:
                votes.setdefault(words[0].lower(), Counter())[int(row["label"])] += 1
    top = {word: count.most_common(2) for word, count in votes.items()}
    return {word: c[0][0] for word, c in top.items() if len(c) == 1 or c[0][1] > c[1][1]}


def without(text: str, spans: Words, removed: np.ndarray) -> str:
    """`text` with the words `removed` each replaced by a space."""
    out, last = [], 0
    for i in sorted(removed):
        out += [text[last : spans[i][0]], " "]
        last = spans[i][1]
    return "".join([*out, text[last:]])


def only(text: str, spans: Words, kept: np.ndarray) -> str:
    """The words `kept`, in text order, joined by spaces."""
    return " ".join(text[spans[i][0] : spans[i][1]] for i in sorted(kept))


def aopc(
    classifier: Classifier, texts: list[str], spans: list[Words], weights: list[np.ndarray],
    top: np.ndarray, p_text: np.ndarray, p_empty: np.ndarray,
) -> dict[str, np.ndarray]:  # fmt: skip
    """(sentences, k) comprehensiveness and sufficiency of the rankings by `weights`, scored in
    one `Classifier.results` call; `top`: each text's predicted class, `p_text` its probability."""
    variants = []
    for text, words, w in zip(texts, spans, weights, strict=True):
        order = np.argsort(-w, kind="stable")
        for k in K_PERCENT:
            best = order[: math.ceil(k * len(words) / 100)]
            variants += [without(text, words, best), only(text, words, best)]
    labels, rows = classifier.labels, classifier.results(variants)
    p = [
        row["probabilities"][labels[c]] if "error" not in row else p_empty[c]
        for row, c in zip(rows, np.repeat(top, 2 * len(K_PERCENT)), strict=True)
    ]
    drop = p_text[:, None, None] - np.reshape(p, (len(texts), len(K_PERCENT), 2))
    return {"comprehensiveness": drop[:, :, 0], "sufficiency": drop[:, :, 1]}


def plausibility(
    texts: list[str], spans: list[Words], weights: list[np.ndarray], toward_positive: np.ndarray,
    lexicon: dict[str, int],
) -> dict[str, float | int]:  # fmt: skip
    """Sign agreement with the one-word labels, over labeled words above the median |weight|."""
    signed, gold = [], []
    for text, words, w, sign in zip(texts, spans, weights, toward_positive, strict=True):
        for (s, e), value in zip(words, w, strict=True):
            if (label := lexicon.get(text[s:e].lower())) is not None:
                signed.append(value * sign)
                gold.append(label)
    if not signed:
        return {"words": 0, "agreement": float("nan"), "agreement_all": float("nan")}
    agree = (np.asarray(signed) > 0) == (np.asarray(gold) == 1)
    strong = np.abs(signed) > np.median(np.abs(signed))
    return {
        "words": int(strong.sum()),
        "agreement": float(agree[strong].mean()) if strong.any() else float("nan"),
        "agreement_all": float(agree.mean()),
    }


def summary(scores: dict[str, np.ndarray], n: int) -> dict[str, Any] | None:
    """Mean AOPC, its standard error and the mean at each k over the first `n` sentences."""
    if n < 2:
        return None
    out: dict[str, Any] = {}
    for name, values in scores.items():
        per_text = values[:n].mean(axis=1)
        out[name] = float(per_text.mean())
        out[f"{name}_se"] = float(per_text.std(ddof=1) / math.sqrt(n))
        out[f"{name}_at_k"] = values[:n].mean(axis=0).round(5).tolist()
    return out
