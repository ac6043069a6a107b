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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline import PipelineError
from pipeline.config import EncoderConfig
from pipeline.hub import check_weights, encoder_dir
from pipeline.labelable import check_texts, text_errors
from pipeline.probe import LinearProbe, load_probe
from pipeline.results import result_rows

ENGINES = ("auto", "onnx", "torch")
EXPORT_KEY = "onnx"  # model.json's entry for an export (`pipeline.export`)


class TextEncoder(Protocol):
    """What the classifier needs of an engine: token counts and sentence vectors."""

    def count_tokens(self, texts: list[str]) -> np.ndarray: ...

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray: ...


@dataclass
class Classifier:
    """A frozen encoder and the linear probe trained on its vectors, with the run's model.json."""

    encoder: TextEncoder
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
        return cls(_load_torch_encoder(model_dir, meta), probe, meta, "torch")

    @property
    def labels(self) -> list[str]:
        """The class names in id order (the columns of `predict_proba`)."""
        return list(self.meta["labels"])

    def text_errors(self, texts: Sequence[Any]) -> list[str | None]:
        """Why each text cannot be labeled (`pipeline.labelable`), or None."""
        return text_errors(texts, self.encoder.count_tokens)

    def predict_proba(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Class probabilities, one row per text (n x K, columns in `labels` order)."""
        check_texts(texts, self.encoder.count_tokens)
        return self._proba(list(texts), progress)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable label name for each text."""
        return [self.labels[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def results(self, texts: Sequence[Any], progress: bool = False) -> list[dict[str, Any]]:
        """One row per text (`pipeline.results`): its label and probabilities, or its error."""
        if isinstance(texts, str):
            raise TypeError("results takes a list of texts, not one string")
        errors = self.text_errors(texts)
        valid = [text for text, error in zip(texts, errors, strict=True) if error is None]
        return result_rows(texts, errors, self._proba(valid, progress), self.labels)

    def _proba(self, texts: list[str], progress: bool) -> np.ndarray:
        if not texts:
            return np.empty((0, len(self.labels)))
        return self.probe.predict_proba(self.encoder.encode(texts, progress=progress))


def _load_torch_encoder(model_dir: Path, meta: dict[str, Any]) -> TextEncoder:
    """The training stack's encoder for model.json's settings, if its weights are the same."""
    unknown = set(meta["encoder"]) - {f.name for f in fields(EncoderConfig)}
    if unknown:
        raise PipelineError(
            f"{model_dir} was made by a newer sst2-probe (unknown encoder settings: "
            f"{', '.join(sorted(unknown))}); update this checkout to use it"
        )
    if importlib.util.find_spec("torch") is None:
        raise PipelineError(
            f"{model_dir} has no ONNX export and torch is not installed: export it where the "
            "training stack is (make export MODEL=...), or pip install 'sst2-probe[train]'"
        )
    from pipeline.encoding.encoder import load_encoder  # torch is imported only here

    config = EncoderConfig(**meta["encoder"])
    folder = encoder_dir(config.name, config.revision)
    if not check_weights(folder, meta["weights_sha256"], meta.get("weights_stamps")):
        raise PipelineError(
            f"encoder {config.name!r} at {folder} has other weights than the ones {model_dir} "
            "was trained with; refusing to mix them (retrain, or restore those weights)"
        )
    return load_encoder(config, folder)
