"""A trained classifier for code: load it once, then label texts as they come.

    from pipeline import Classifier

    classifier = Classifier.load("models/alammar-2000-minilm")
    classifier.labels                                   # ['negative', 'positive']
    classifier.predict(["a visually stunning rumination"])        # ['positive']
    classifier.predict_proba(["a visually stunning rumination"])  # array([[0.16, 0.84]])

Loading makes the checks predict.py makes: the classifier file's SHA-256 against model.json
(`load_probe`), and the encoder's weights against the ones it was trained with. The encoder,
pooling, layer and max_length come from model.json, so texts are encoded as in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import PipelineError
from pipeline.config import EncoderConfig
from pipeline.encoding.encoder import Encoder, embed, load_encoder
from pipeline.hub import encoder_dir, weights_hash
from pipeline.probe import LinearProbe, load_probe


@dataclass
class Classifier:
    """A frozen encoder and the linear probe trained on its vectors, with the run's model.json."""

    encoder: Encoder
    probe: LinearProbe
    meta: dict[str, Any]

    @classmethod
    def load(cls, model_dir: str | Path) -> Classifier:
        """The classifier in `model_dir` (models/<run>), after checking it and its encoder."""
        probe, meta = load_probe(Path(model_dir))
        unknown = set(meta["encoder"]) - {f.name for f in fields(EncoderConfig)}
        if unknown:
            raise PipelineError(
                f"{model_dir} was made by a newer sst2-probe (unknown encoder settings: "
                f"{', '.join(sorted(unknown))}); update this checkout to use it"
            )
        config = EncoderConfig(**meta["encoder"])
        folder = encoder_dir(config.name, config.revision)
        if weights_hash(folder) != meta["weights_sha256"]:
            raise PipelineError(
                f"encoder {config.name!r} at {folder} has other weights than the ones {model_dir} "
                "was trained with; refusing to mix them (retrain, or restore those weights)"
            )
        return cls(load_encoder(config, folder), probe, meta)

    @property
    def labels(self) -> list[str]:
        """The class names in id order (the columns of `predict_proba`)."""
        return list(self.meta["labels"])

    def predict_proba(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Class probabilities, one row per text (n x K, columns in `labels` order)."""
        if isinstance(texts, str):
            raise TypeError("predict_proba takes a list of texts, not one string")
        for i, text in enumerate(texts):
            if error := text_error(text):
                raise PipelineError(f"text {i}: {error}; there is nothing to label")
        vectors, _ = embed(self.encoder, list(texts), progress=progress)
        return self.probe.predict_proba(vectors)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable label name for each text."""
        return [self.labels[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def results(self, texts: Sequence[str], progress: bool = False) -> list[dict[str, Any]]:
        """One dict per text: its label, that label's probability and every class's probability.

        Two classes also give `p_positive` (class 1's probability). A text `text_error` names
        gets {"text": ..., "error": ...} instead of failing the others.
        """
        results: list[dict[str, Any]] = [{"text": text} for text in texts]
        valid = []
        for i, text in enumerate(texts):
            if error := text_error(text):
                results[i]["error"] = error
            else:
                valid.append(i)
        if not valid:
            return results
        names = self.labels
        probabilities = self.predict_proba([texts[i] for i in valid], progress)
        for i, p in zip(valid, probabilities, strict=True):
            top = int(p.argmax())
            results[i].update(label=names[top], probability=float(p[top]))
            if len(names) == 2:
                results[i]["p_positive"] = float(p[1])
            results[i]["probabilities"] = dict(zip(names, p.tolist(), strict=True))
        return results


def text_error(text: object) -> str | None:
    """Why `text` cannot be labeled ("not a string", "empty text" for blank), or None."""
    if not isinstance(text, str):
        return "not a string"
    return None if text.strip() else "empty text"
