"""The encoder on ONNX Runtime: `tokenizers` and `onnxruntime` alone, no torch, no transformers.

`make export` (`pipeline.export`) writes ``encoder.onnx`` (the padded model with the run's pooling
and layers inside, so it outputs the very vector the classifier was trained on), its weights
``encoder.onnx.data`` and ``tokenizer.json`` into the model folder, and records their SHA-256s in
model.json. Here they are checked and loaded, and texts run as the torch encoder runs them:
tokenized with truncation to the run's max_length, sorted by length, cut into the same
token-budget batches (`pipeline.encoding.batching`), padded, and each vector written back at its
input position.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import PipelineError
from pipeline.encoding.batching import pad_ids, token_budget_batches
from pipeline.io import sha256_file

ENCODER_FILE = "encoder.onnx"  # the graph
WEIGHTS_FILE = "encoder.onnx.data"  # its weights, beside it: ONNX Runtime maps them, not copies
TOKENIZER_FILE = "tokenizer.json"
FILES = {"model": ENCODER_FILE, "weights": WEIGHTS_FILE, "tokenizer": TOKENIZER_FILE}
WINDOW = 65_536  # texts tokenized, sorted and batched together (as in the torch encoder)
INPUTS = ("input_ids", "attention_mask")  # the graph's inputs, int64 (batch, sequence)


@dataclass
class OnnxEncoder:
    """A checked ONNX Runtime session and tokenizer, with the run's batching settings."""

    session: Any  # onnxruntime.InferenceSession
    tokenizer: Any  # tokenizers.Tokenizer, truncating to max_length
    counter: Any  # tokenizers.Tokenizer, not truncating (for `count_tokens`)
    pad_id: int
    batch_tokens: int

    @property
    def dim(self) -> int:
        """Length of one sentence vector (the graph's output width)."""
        return int(self.session.get_outputs()[0].shape[1])

    def count_tokens(self, texts: list[str]) -> np.ndarray:
        """How many tokens the tokenizer finds in each text, special tokens not counted."""
        encoded = self.counter.encode_batch(texts, add_special_tokens=False)
        return np.fromiter((len(e.ids) for e in encoded), dtype=np.int64, count=len(texts))

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """One float32 vector per text, in input order."""

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        bar = _bar(len(texts)) if progress else None
        for start in range(0, len(texts), WINDOW):
            encoded = self.tokenizer.encode_batch(texts[start : start + WINDOW])
            ids = [np.asarray(e.ids, dtype=np.int64) for e in encoded]
            lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
            order = np.argsort(-lengths, kind="stable")
            for batch in token_budget_batches(order, lengths, self.batch_tokens):
                feed = dict(zip(INPUTS, pad_ids([ids[i] for i in batch], self.pad_id), strict=True))
                out[start + batch] = self.session.run(None, feed)[0]
                if bar is not None:
                    bar.update(len(batch))
        if bar is not None:
            bar.close()
        return out


def load_onnx_encoder(
    model_dir: Path, meta: dict[str, Any], threads: int | None = None
) -> OnnxEncoder:
    """The exported encoder of `model_dir` after checking both files against model.json.

    `threads`: ONNX Runtime's intra-op threads (default: OMP_NUM_THREADS, else the CPUs this
    process may use).
    """
    export = meta.get("onnx")
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
    graph, _, tokenizer_file = (check_file(Path(model_dir), export[key]) for key in FILES)
    tokenizer, counter = Tokenizer.from_file(tokenizer_file), Tokenizer.from_file(tokenizer_file)
    tokenizer.no_padding()
    tokenizer.enable_truncation(int(meta["encoder"]["max_length"]))
    counter.no_padding()
    counter.no_truncation()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or _cpus()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: its warnings are about unused initializers
    try:
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # ORT raises its own kinds (Fail, InvalidGraph, ...)
        raise PipelineError(f"{model_dir / export['model']['file']}: cannot load ({err})") from None
    return OnnxEncoder(
        session, tokenizer, counter, int(export["pad_id"]), int(meta["encoder"]["batch_tokens"])
    )


def check_file(model_dir: Path, entry: dict[str, str]) -> str:
    """The path of an exported file, after checking it against its recorded SHA-256."""
    path = model_dir / entry["file"]
    if not path.is_file():
        raise PipelineError(f"missing {path}; run make export MODEL={model_dir} again")
    if sha256_file(path) != entry["sha256"]:
        raise PipelineError(
            f"refusing to load {path}: its SHA-256 does not match model.json (it changed after "
            f"the export); run make export MODEL={model_dir} again"
        )
    return str(path)


def _cpus() -> int:
    """OMP_NUM_THREADS when set (tests share the cores that way), else the usable CPUs."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _bar(total: int) -> Any:
    """A progress bar (tqdm, imported only for long work)."""
    from pipeline.progress import progress_bar

    return progress_bar(total=total, desc="encoding", unit="sent")
