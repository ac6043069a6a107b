"""The ways `make bench` measures beside ours: the blog's (pad all to the longest, fixed chunks),
sentence-transformers' `encode()` (batch size tuned), and `make export`'s graph on ONNX Runtime."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.bench.rates import UNPACKED, padding_ratio, timed
from pipeline.config import EncoderConfig, to_dict
from pipeline.encoding import row_cosines
from pipeline.encoding.batching import plan
from pipeline.encoding.encoder import Encoder, load_encoder, pad

BLOG_CHUNK = 2000
ST_BATCH_SIZES = (32, 64, 128, 256)


def blog_way(encoder: Encoder, texts: list[str]) -> np.ndarray:
    """The notebook's recipe: pad all to the global longest, [CLS] of fixed chunks."""
    ids = encoder.tokenize(texts).ids
    padded, mask = pad(ids, encoder.tokenizer.pad_token_id)  # every row to the global longest
    out = []
    with torch.inference_mode():
        for start in range(0, len(ids), BLOG_CHUNK):
            chunk = slice(start, start + BLOG_CHUNK)
            hidden = encoder.model(input_ids=padded[chunk], attention_mask=mask[chunk])
            out.append(hidden.last_hidden_state[:, 0].numpy())
    return np.concatenate(out)


def sentence_transformers_way(
    folder: Path, texts: list[str], lengths: np.ndarray, repeats: int
) -> dict[str, Any]:
    """`SentenceTransformer.encode()` with the best batch size of a small grid."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")

    def encode(batch: list[str], size: int) -> np.ndarray:
        return model.encode(batch, batch_size=size, show_progress_bar=False)

    tried = {
        size: timed(lambda s=size: encode(texts[:1000], s), 1)["median_s"]
        for size in ST_BATCH_SIZES
    }
    best = min(tried, key=tried.get)
    by_chars = np.argsort([-len(t) for t in texts], kind="stable")  # how encode() sorts
    batches = [by_chars[i : i + best] for i in range(0, len(texts), best)]
    result = timed(lambda: encode(texts, best), repeats)
    return {
        **result,
        "batch_size": best,
        "tuning_s": tried,
        "padding": padding_ratio(lengths, batches),
    }


def onnx_way(
    config: EncoderConfig, texts: list[str], precision: str, repeats: int, reference: np.ndarray
) -> dict[str, Any]:
    """`make export`'s graph of the encoder in `precision` on ONNX Runtime (padded, the same
    token-budget batches), with its vectors' max |difference| and mean cosine to `reference`."""
    from pipeline.encoding.onnx_encoder import EXPORT_KEY, load_onnx_encoder
    from pipeline.export import write_export

    with tempfile.TemporaryDirectory() as tmp:
        padded = load_encoder(config, prepack=False, packing=False)
        entry = write_export(padded, Path(tmp), precision)
        onnx = load_onnx_encoder(Path(tmp), {"encoder": to_dict(config), EXPORT_KEY: entry})
    vectors = onnx.encode(texts)
    tokens = onnx.tokenize(texts)
    lengths = np.array([len(row) for row in tokens.ids])
    return {
        **timed(lambda: onnx.encode(texts), repeats),
        "padding": padding_ratio(lengths, plan(tokens, config.batch_tokens)),
        "precision": precision,
        "limit": "fp32" + UNPACKED,  # int8 too: ONNX Runtime's int8 against torch's fp32 rate
        "max_abs_diff": float(np.abs(vectors - reference).max()),
        "mean_cosine": float(row_cosines(vectors, reference).mean()),
    }
