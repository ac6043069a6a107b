"""Why a label: each word's signed weight, from variants of the text with words removed.

    from pipeline import Classifier
    from pipeline.explain import explain_rows

    rows = explain_rows(Classifier.load("models/alammar-2000-minilm"), ["a sour little movie"])
    rows[0]["words"]  # [{"word": "a", "start": 0, "end": 1, "weight": -0.02}, ...]

Words are the tokenizer's own (its pre-tokenizer's word of each token, spans from its offsets):
the subword tokens of a word go together, punctuation is a word of its own, and
``text[start:end] == word``. A variant deletes a word's token ids from the tokenized text (the
special tokens stay), so nothing is tokenized twice, and every variant of every text runs
through one `embed` call. A word's weight is in the predicted class's log-odds (positive: it
pushes toward the predicted label); with more than two classes each word also carries
``weights``, one per class, in that class's log-odds against the rest.

- ``occlusion``: the log-odds lost when the word alone is removed (n + 1 variants).
- ``banzhaf``: each word's Banzhaf value: what it adds to the log-odds on average over the
  subsets of the other words, read off a least-squares line (with intercept) through variants
  that keep each word with probability 1/2, BANZHAF_PER_WORD * n in all (at most MAX_VARIANTS;
  every subset when they fit, which gives the exact values; occlusion's from n + 1 >
  MAX_VARIANTS / 2 on, where too few variants are left to fit n weights).
- ``shap``: Kernel SHAP (Lundberg and Lee, 2017) on sampled coalitions of words, about
  SHAP_PER_WORD variants per word and at most MAX_VARIANTS a text: coalitions of one word and of
  all but one are enumerated first, as shap's KernelExplainer does, the rest sampled from the
  Shapley kernel; exact Shapley values when all coalitions fit. The weights add up to the
  log-odds of the text minus that of the text with every word removed.

The default is the one docs/explain.md measured most faithful within the cost target.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from math import comb
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline import PipelineError
from pipeline.encoding.batching import Tokens, embed
from pipeline.labelable import split_labelable
from pipeline.probe import LinearProbe
from pipeline.results import result_rows

if TYPE_CHECKING:
    from pipeline.classifier import Classifier

METHODS = ("occlusion", "banzhaf", "shap")
DEFAULT_METHOD = "banzhaf"
BANZHAF_PER_WORD = 4  # banzhaf's variants per word, the text included (the 2n to 4n)
SHAP_PER_WORD = 3  # Kernel SHAP's coalitions per word
MAX_VARIANTS = 100  # variants a text may cost (banzhaf, shap): 1/50 of LIME's 5,000 model calls
RIDGE = 1e-6  # keeps the least squares solvable when few coalitions were drawn


@dataclass
class Plan:
    """One text's words and the variants that explain it."""

    spans: np.ndarray  # (n, 2) each word's character span
    token_words: list[np.ndarray]  # per window of the text: each token's word, -1 special
    keep: np.ndarray  # (m, n) bool, a variant per row: row 0 keeps every word (the text)
    method: str = "occlusion"
    fit: np.ndarray | None = None  # banzhaf, shap: each row's weight in the least squares


@dataclass
class Explaining:
    """Everything `explain_rows` runs: the texts' errors, their plans and all variants."""

    errors: list[str | None]
    tokens: Tokens  # the labelable texts' tokens, as `results` reads them
    plans: list[Plan]
    variants: Tokens  # every variant of every labelable text, plan by plan


def explain_rows(
    classifier: Classifier, texts: Sequence[Any], method: str = DEFAULT_METHOD, seed: int = 0
) -> list[dict[str, Any]]:
    """A row per text: `Classifier.results`' row plus ``words`` (each word's span and weight),
    or the text's error row. All variants of all texts run through one `embed` call."""
    explaining = plan_variants(classifier, texts, method, seed)
    variants = explaining.variants
    if len(variants):
        vectors, _ = embed(classifier.encoder, variants)
    else:
        vectors = np.empty((0, classifier.encoder.dim), dtype=np.float32)
    return explained_rows(classifier, texts, explaining, vectors)


def plan_variants(
    classifier: Classifier, texts: Sequence[Any], method: str = DEFAULT_METHOD, seed: int = 0
) -> Explaining:
    """Tokenize `texts` once; plan each labelable text's variants and build their tokens."""
    if method not in METHODS:
        raise PipelineError(f"unknown explanation method {method!r}; valid: {', '.join(METHODS)}")
    errors, tokens = split_labelable(texts, lambda batch: classifier.encoder.tokenize(batch, True))
    plans = []
    starts = tokens.starts
    for text, start in enumerate(starts):
        rows = range(int(start), int(start + tokens.windows[text]))
        spans, token_words = text_words(
            [tokens.offsets[r] for r in rows], [tokens.words[r] for r in rows]
        )
        ids = np.concatenate([tokens.ids[r] for r in rows])
        rng = np.random.default_rng([seed, zlib.crc32(ids.tobytes())])  # the text's own draws
        keep, fit = coalitions(len(spans), method, rng)
        plans.append(Plan(spans, token_words, keep, method, fit))
    return Explaining(errors, tokens, plans, variant_tokens(tokens, plans))


def explained_rows(
    classifier: Classifier, texts: Sequence[Any], explaining: Explaining, vectors: np.ndarray
) -> list[dict[str, Any]]:
    """The rows, from the variants' vectors (in `explaining.variants`' order)."""
    scores, labels = log_odds(classifier.probe, vectors), classifier.labels
    firsts = np.cumsum([0] + [len(plan.keep) for plan in explaining.plans])[:-1].astype(int)
    proba = classifier.probe.predict_proba(vectors[firsts]) if len(firsts) else vectors[:0, :0]
    rows = result_rows(texts, explaining.errors, proba, labels, explaining.tokens)
    labeled = [i for i, error in enumerate(explaining.errors) if error is None]
    for i, plan, first, p in zip(labeled, explaining.plans, firsts, proba, strict=True):
        phi = attribute(plan, scores[first : first + len(plan.keep)])  # (n, K)
        top, text, words = int(p.argmax()), texts[i], []
        for (s, e), w in zip(plan.spans.tolist(), phi, strict=True):
            word = {"word": text[s:e], "start": s, "end": e, "weight": float(w[top])}
            if len(labels) > 2:
                word["weights"] = dict(zip(labels, w.tolist(), strict=True))
            words.append(word)
        rows[i]["words"] = words
    return rows


def text_words(
    offsets: list[np.ndarray], words: list[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The words of one text's windows: (n, 2) spans, and each window's tokens' word (0..n-1,
    -1 for special tokens). A word's span runs from its first token's start to its last's end."""
    ids = np.concatenate(words)
    spans = np.concatenate(offsets).reshape(-1, 2)
    real = ids >= 0
    unique, inverse = np.unique(ids[real], return_inverse=True)
    starts = np.full(len(unique), np.iinfo(np.int64).max)
    ends = np.zeros(len(unique), dtype=np.int64)
    np.minimum.at(starts, inverse, spans[real, 0])
    np.maximum.at(ends, inverse, spans[real, 1])
    index = np.full(len(ids), -1, dtype=np.int64)
    index[real] = inverse
    token_words = np.split(index, np.cumsum([len(w) for w in words])[:-1])
    return np.column_stack([starts, ends]).astype(np.int64).reshape(-1, 2), token_words


def coalitions(n: int, method: str, rng: np.random.Generator) -> tuple[np.ndarray, Any]:
    """The variants of a text of `n` words as keep masks (row 0: all), and their fit weights."""
    everything = np.ones((1, n), bool)
    if method == "occlusion":
        return np.vstack([everything, ~np.eye(n, dtype=bool)]), None
    if method == "banzhaf":
        if 2 * (n + 1) > MAX_VARIANTS:  # too few variants to fit n weights: occlusion's
            return np.vstack([everything, ~np.eye(n, dtype=bool)]), None
        masks = halves(n, min(BANZHAF_PER_WORD * n, MAX_VARIANTS) - 1, rng)
        return np.vstack([everything, masks]), np.ones(1 + len(masks))
    masks, kernel = shap_coalitions(n, min(SHAP_PER_WORD * n, MAX_VARIANTS - 2), rng)
    return np.vstack([everything, ~everything, masks]), np.concatenate([[0.0, 0.0], kernel])


def halves(n: int, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Up to `budget` distinct keep masks of `n` words, none keeping all: every subset when they
    fit, else masks that keep each word with probability 1/2 (uniform over all subsets)."""
    if n < 16 and 2**n - 1 <= budget:
        every = (np.arange(2**n - 1)[:, None] >> np.arange(n)) & 1
        return every.astype(bool).reshape(-1, n)
    found: dict[bytes, np.ndarray] = {}
    for mask in rng.random((4 * budget, n)) < 0.5:  # a few draws more, for the repeats
        if len(found) >= budget:
            break
        if not mask.all():
            found.setdefault(mask.tobytes(), mask)
    return np.array(list(found.values()), dtype=bool).reshape(-1, n)


def shap_coalitions(n: int, budget: int, rng: np.random.Generator) -> tuple[np.ndarray, Any]:
    """Up to `budget` coalitions of 1..n-1 of `n` words and their Shapley kernel weights, as
    shap's KernelExplainer draws them: sizes s and n - s together, whole sizes (smallest and
    largest first) while the budget allows, then paired draws from the kernel for the rest."""
    if n < 2:
        return np.zeros((0, n), bool), np.zeros(0)
    sizes = np.arange(1, (n + 1) // 2 + 1)  # s, paired with n - s unless s == n - s
    paired = sizes < n - sizes
    mass = (n - 1) / (sizes * (n - sizes)) * np.where(paired, 2, 1)
    mass /= mass.sum()
    found: dict[bytes, float] = {}
    left, full = budget, 0
    for s, pair, share in zip(sizes, paired, mass, strict=True):  # whole sizes while they fit
        count = comb(n, int(s)) * (2 if pair else 1)
        if count > left:
            break
        for subset in _subsets(n, int(s)):
            found[subset.tobytes()] = share / count
            if pair:
                found[(~subset).tobytes()] = share / count
        left, full = left - count, full + 1
    if full < len(sizes) and left > 0:  # the rest drawn from the kernel over the other sizes
        rest = mass[full:] / np.where(paired[full:], 2, 1)
        drawn: dict[bytes, float] = {}
        for index in rng.choice(len(rest), size=4 * left, p=rest / rest.sum()):
            s, pair = int(sizes[full + index]), bool(paired[full + index])
            if len(drawn) + 1 + pair > left:
                break
            subset = np.zeros(n, bool)
            subset[rng.permutation(n)[:s]] = True
            for mask in (subset, ~subset) if pair else (subset,):
                drawn[mask.tobytes()] = drawn.get(mask.tobytes(), 0.0) + 1.0
        total = sum(drawn.values())
        found |= {key: w * mass[full:].sum() / total for key, w in drawn.items()}
    masks = np.array([np.frombuffer(key, dtype=bool) for key in found]).reshape(-1, n)
    return masks, np.fromiter(found.values(), dtype=np.float64, count=len(found))


def _subsets(n: int, s: int) -> np.ndarray:
    """Every keep mask of `n` words with `s` kept (s is 1 or small: whole sizes are few)."""
    masks = np.zeros((comb(n, s), n), bool)
    for row, kept in enumerate(combinations(range(n), s)):
        masks[row, list(kept)] = True
    return masks


def variant_tokens(tokens: Tokens, plans: list[Plan]) -> Tokens:
    """The variants' tokens, plan by plan: a window loses the tokens of the words its variant
    removes (special tokens stay); windows left without a word are dropped, but a variant keeps
    at least one (its special tokens alone when every word is gone)."""
    ids, weights, windows = [], [], []
    firsts = np.cumsum(tokens.windows) - tokens.windows
    for first, plan in zip(firsts, plans, strict=True):
        start = int(first)
        rows = [tokens.ids[start + w] for w in range(len(plan.token_words))]
        for keep in plan.keep:
            kept = [(words < 0) | keep[words] for words in plan.token_words]
            real = [
                int((k & (words >= 0)).sum())
                for k, words in zip(kept, plan.token_words, strict=True)
            ]
            live = [w for w, count in enumerate(real) if count] or [0]
            ids += [rows[w][kept[w]] for w in live]
            weights += [real[w] for w in live]
            windows.append(len(live))
    windows_array = np.asarray(windows, dtype=np.int64)
    weights_array = np.asarray(weights, dtype=np.int64)
    counts = np.add.reduceat(weights_array, np.cumsum(windows_array) - windows_array)
    return Tokens(
        ids,
        weights_array,
        windows_array,
        counts if len(windows) else weights_array,
        np.zeros(len(windows), dtype=bool),
    )


def log_odds(probe: LinearProbe, vectors: np.ndarray) -> np.ndarray:
    """(m, K): each class's log-odds against the rest, from the probe's logits (exact where
    the probabilities round to 0 or 1)."""
    x = np.asarray(vectors, dtype=np.float64)
    if probe.mean is not None:
        x = (x - probe.mean) / probe.scale
    z = x @ probe.coef.T + probe.intercept
    if z.shape[1] == 1:
        return np.column_stack([-z[:, 0], z[:, 0]])
    return np.column_stack(
        [z[:, k] - np.logaddexp.reduce(np.delete(z, k, axis=1), axis=1) for k in range(z.shape[1])]
    )


def attribute(plan: Plan, scores: np.ndarray) -> np.ndarray:
    """(n, K) each word's weight per class, from the variants' log-odds (rows as `plan.keep`)."""
    keep, full = plan.keep, scores[0]
    n = keep.shape[1]
    if plan.fit is None:  # occlusion: what removing the word alone loses
        return full - scores[1:]
    if plan.method == "banzhaf":  # the slopes of a line (with intercept) through the variants
        x = np.column_stack([np.ones(len(keep)), keep])
        return _least_squares(x, scores, plan.fit)[1:]
    empty = scores[1]
    if n == 1:
        return (full - empty)[None, :]
    # shap: the weights add up to full - empty: eliminate the last word's, then least squares
    z = keep[2:].astype(np.float64)
    target = (scores[2:] - empty) - z[:, -1:] * (full - empty)
    phi = _least_squares(z[:, :-1] - z[:, -1:], target, plan.fit[2:])
    return np.vstack([phi, (full - empty) - phi.sum(axis=0)])


def _least_squares(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted least squares solution of x @ phi ~ y (a tiny ridge keeps it solvable)."""
    x = x.astype(np.float64)
    gram = x.T @ (weights[:, None] * x) + RIDGE * np.eye(x.shape[1])
    return np.linalg.solve(gram, x.T @ (weights[:, None] * y))
