"""The encoder on ONNX Runtime: `tokenizers` and `onnxruntime` alone, no torch, no transformers.

`make export` (`pipeline.export`) writes ``encoder.onnx`` (the padded model with the run's pooling
and layers inside, so it outputs the very vector the classifier was trained on), its weights
``encoder.onnx.data`` and ``tokenizer.json`` into the model folder, and records their SHA-256s in
model.json. Here they are checked and loaded as the ONNX Runtime engine of the one encode path
(`pipeline.encoding.batching.embed`): it supplies `tokenize` (tokenizer.json, cut at the run's
max_length) and `run` (one padded batch through the session).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import PipelineError
from pipeline.encoding.batching import Tokens, cut_at, embed, pad_ids, tokenize
from pipeline.io import checked_file, usable_cpus

ENCODER_FILE = "encoder.onnx"  # the graph
WEIGHTS_FILE = "encoder.onnx.data"  # its weights, beside it: ONNX Runtime maps them, not copies
TOKENIZER_FILE = "tokenizer.json"
EXPORT_KEY = "onnx"  # model.json's entry for an export
FILES = {"model": ENCODER_FILE, "weights": WEIGHTS_FILE, "tokenizer": TOKENIZER_FILE}
INPUTS = ("input_ids", "attention_mask")  # the graph's inputs, int64 (batch, sequence)


@dataclass
class OnnxEncoder:
    """A checked ONNX Runtime session and tokenizer, with the run's batching settings."""

    session: Any  # onnxruntime.InferenceSession
    tokenizer: Any  # tokenizers.Tokenizer, cutting at max_length
    pad_id: int
    batch_tokens: int
    chunked: bool  # long texts are read in windows (`encoder.long_texts`)
    packed = False  # the graph takes padded batches

    @property
    def dim(self) -> int:
        """Length of one sentence vector (the graph's output width)."""
        return int(self.session.get_outputs()[0].shape[1])

    def tokenize(self, texts: list[str], offsets: bool = False) -> Tokens:
        """Ids, real-token counts (and character offsets) from one tokenizer call."""
        return tokenize(self.tokenizer, texts, self.chunked, offsets)

    def run(self, rows: list[np.ndarray]) -> np.ndarray:
        """One batch of token ids -> its sentence vectors."""
        return self.session.run(None, dict(zip(INPUTS, pad_ids(rows, self.pad_id), strict=True)))[0]

    def encode(self, texts: list[str] | Tokens, progress: bool = False) -> np.ndarray:
        """One float32 vector per text, in input order."""
        return embed(self, texts, progress=progress)[0]


def load_onnx_encoder(
    model_dir: Path, meta: dict[str, Any], threads: int | None = None
) -> OnnxEncoder:
    """The exported encoder of `model_dir` after checking both files against model.json.

    `threads`: ONNX Runtime's intra-op threads (default: OMP_NUM_THREADS, else the CPUs this
    process may use).
    """
    export = meta.get(EXPORT_KEY)
    if not export:
        raise PipelineError(f"{model_dir} has no ONNX export; run make export MODEL={model_dir}")
    try:
        import onnxruntime as ort
        from tokenizers import Tokenizer
    except ImportError as err:
        raise PipelineError(
            f"the onnx engine needs onnxruntime and tokenizers ({err}): pip install sst2-probe"
        ) from None
    if set(FILES) - set(export):
        raise PipelineError(
            f"{model_dir}'s export is an older one; run make export MODEL={model_dir}"
        )
    again = f"run make export MODEL={model_dir} again"
    graph, _, tokenizer_file = (
        str(checked_file(Path(model_dir) / export[key]["file"], export[key]["sha256"], again))
        for key in FILES
    )
    settings = meta["encoder"]
    long_texts = settings.get("long_texts", "truncate")  # older models truncated
    tokenizer = cut_at(
        Tokenizer.from_file(tokenizer_file),
        settings["max_length"],
        long_texts,
        settings.get("stride"),
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or usable_cpus()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: its warnings are about unused initializers
    try:
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # ORT raises its own kinds (Fail, InvalidGraph, ...)
        raise PipelineError(f"{model_dir / export['model']['file']}: cannot load ({err})") from None
    return OnnxEncoder(
        session,
        tokenizer,
        int(export["pad_id"]),
        int(settings["batch_tokens"]),
        long_texts == "chunk",
    )
