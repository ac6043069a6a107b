"""`make bench`'s long-text row: a 2,000-token text through `embed` (cut into windows, batched
with each other, pooled) against its windows encoded as one batch. Target: at most 1.2x."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from pipeline import PipelineError
from pipeline.encoding.batching import embed, plan
from pipeline.encoding.encoder import Encoder

LONG_TEXT_TOKENS = 2000


def long_text(encoder: Encoder, texts: list[str], tokens: int = LONG_TEXT_TOKENS) -> str:
    """`texts` joined (again from the first if they run out), cut at the space after their
    `tokens`-th token."""
    if not texts:
        raise PipelineError("no texts to make a long text of")
    for end in range(100, 100 * (tokens + 1), 100):
        text = " ".join(texts[i % len(texts)] for i in range(end))
        spans = encoder.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        if len(spans["input_ids"]) >= tokens:
            space = text.find(" ", spans["offset_mapping"][tokens - 1][1])
            return text if space < 0 else text[:space]
    raise PipelineError(f"the texts hold no {tokens} tokens")


def long_text_cost(encoder: Encoder, text: str, repeats: int) -> dict[str, Any]:
    """One long text through `embed` (tokenized, cut into windows, batched, pooled) against its
    windows encoded as one batch (`run` on the same rows), in turn after a warm-up: medians."""
    tokens = encoder.tokenize([text])
    ways = {"embed": lambda: embed(encoder, [text]), "one batch": lambda: encoder.run(tokens.ids)}
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    for run_it in ways.values():
        run_it()
    for _ in range(repeats):
        for way, run_it in ways.items():
            started = time.perf_counter()
            run_it()
            seconds[way].append(time.perf_counter() - started)
    medians = {way: float(np.median(s)) for way, s in seconds.items()}
    return {
        "tokens": int(tokens.counts[0]),
        "windows": int(tokens.windows[0]),
        "batches": len(plan(tokens, encoder.batch_tokens, encoder.packed)),
        "repeats": repeats,
        "median_s": medians,
        "runs_s": seconds,
        "ratio": medians["embed"] / medians["one batch"],
    }


def long_text_markdown(report: dict[str, Any]) -> str:
    """The long-text rows: a 2,000-token text against its windows as one batch."""
    lines = [
        "",
        "A long text (target: `embed` at most 1.2x its windows encoded as one batch; medians, "
        "the two in turn):",
        "",
        "| encoder | tokens | windows | batches | embed s | one batch s | ratio | repeats |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, e in report["encoders"].items():
        if "long_text" in e:
            t, s = e["long_text"], e["long_text"]["median_s"]
            lines.append(
                f"| {name} | {t['tokens']:,} | {t['windows']} | {t['batches']} | "
                f"{s['embed']:.3f} | {s['one batch']:.3f} | {t['ratio']:.3f} | {t['repeats']} |"
            )
    return "\n".join(lines) + "\n"
