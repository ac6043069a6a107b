"""A trained classifier for code: load it once, then label texts as they come.

    from pipeline import Classifier

    classifier = Classifier.load("models/alammar-2000-minilm")
    classifier.labels                                   # ['negative', 'positive']
    classifier.predict(["a visually stunning rumination"])        # ['positive']
    classifier.predict_proba(["a visually stunning rumination"])  # array([[0.16, 0.84]])
    classifier.results(["a visually stunning rumination", ""])    # a row per text, or its error

The encoder runs on one of two engines: ``torch`` (the training stack) or ``onnx`` (ONNX Runtime
and `tokenizers` alone, after `make export`); ``auto`` takes ONNX Runtime when the model folder
has an export. Loading checks the classifier file's SHA-256 against model.json, and the encoder
against the one it was trained with. Every text is checked (`pipeline.labelable`) before it
joins a batch, so a bad text gets its own error and never affects another.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import PipelineError
from pipeline.config import recorded_encoder
from pipeline.encoding.batching import Engine, Tokens, embed
from pipeline.encoding.onnx_encoder import EXPORT_KEY
from pipeline.hub import check_weights, encoder_dir
from pipeline.labelable import labelable_tokens, split_labelable
from pipeline.probe import LinearProbe, load_probe
from pipeline.results import result_rows

ENGINES = ("auto", "onnx", "torch")


@dataclass
class Classifier:
    """A frozen encoder and the linear probe trained on its vectors, with the run's model.json."""

    encoder: Engine
    probe: LinearProbe
    meta: dict[str, Any]
    engine: str = "torch"

    @classmethod
    def load(cls, model_dir: str | Path, engine: str = "auto") -> Classifier:
        """The classifier in `model_dir` (models/<run>) on `engine`, after checking both."""
        if engine not in ENGINES:
            raise PipelineError(f"unknown engine {engine!r}; valid engines: {', '.join(ENGINES)}")
        model_dir = Path(model_dir)
        probe, meta = load_probe(model_dir)
        if engine == "auto":
            exported = EXPORT_KEY in meta and importlib.util.find_spec("onnxruntime") is not None
            engine = "onnx" if exported else "torch"
        if engine == "onnx":
            from pipeline.encoding.onnx_encoder import load_onnx_encoder

            return cls(load_onnx_encoder(model_dir, meta), probe, meta, "onnx")
        return cls(load_torch_encoder(model_dir, meta), probe, meta, "torch")

    @property
    def labels(self) -> list[str]:
        """The class names in id order (the columns of `predict_proba`)."""
        return list(self.meta["labels"])

    def predict_proba(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Class probabilities, one row per text (n x K, columns in `labels` order)."""
        return self._proba(labelable_tokens(texts, self.encoder.tokenize), progress)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable label name for each text."""
        return [self.labels[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def results(self, texts: Sequence[Any], progress: bool = False) -> list[dict[str, Any]]:
        """One row per text (`pipeline.results`): its label and probabilities, or its error."""
        errors, tokens = split_labelable(texts, self.encoder.tokenize)
        return result_rows(texts, errors, self._proba(tokens, progress), self.labels, tokens)

    def explain(self, texts: Sequence[Any], method: str | None = None) -> list[dict[str, Any]]:
        """`results`' rows, each with its words' spans and weights (`pipeline.explain`)."""
        from pipeline.explain import DEFAULT_METHOD, explain_rows

        return explain_rows(self, texts, method or DEFAULT_METHOD)

    def _proba(self, tokens: Tokens, progress: bool) -> np.ndarray:
        if not len(tokens):
            return np.empty((0, len(self.labels)))
        vectors, _ = embed(self.encoder, tokens, progress=progress)
        return self.probe.predict_proba(vectors)


def load_torch_encoder(model_dir: Path, meta: dict[str, Any], as_exported: bool = False) -> Any:
    """The training stack's encoder for model.json's settings, if its weights are the ones the
    classifier was trained with. `as_exported`: as `make export` traces it (fp32 on the CPU,
    padded batches, torch's own linear layers)."""
    config = recorded_encoder(meta["encoder"], model_dir)
    if importlib.util.find_spec("torch") is None:
        raise PipelineError(
            f"{model_dir} has no ONNX export and torch is not installed: export it where the "
            "training stack is (make export MODEL=...), or pip install 'sst2-probe[train]'"
        )
    from pipeline.encoding.encoder import load_encoder  # torch is imported only here

    folder = encoder_dir(config.name, config.revision)
    if not check_weights(folder, meta["weights_sha256"], meta.get("weights_stamps")):
        raise PipelineError(
            f"encoder {config.name!r} at {folder} has other weights than the ones {model_dir} "
            "was trained with; refusing to mix them (retrain, or restore those weights)"
        )
    if as_exported:
        config = replace(config, precision="fp32", device="cpu")
        return load_encoder(config, folder, prepack=False, packing=False)
    return load_encoder(config, folder)
