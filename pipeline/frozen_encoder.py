"""The frozen encoder as a scikit-learn transformer: texts in, one float32 vector per text out.

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from pipeline import FrozenEncoder

    model = make_pipeline(FrozenEncoder("minilm", pooling="mean"), LogisticRegression())

The parameters are `EncoderConfig`'s keys with its defaults (a run config's, so `FrozenEncoder()`
is distilbert-base-uncased with cls pooling) and are checked the same way. An estimator holds
only its parameters, so `clone`, `cross_val_score`, `GridSearchCV` and pickling work as usual; the
loaded model lives in a process-wide cache keyed by those parameters, so each setting is loaded
once per process, not once per clone or fold.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import fields

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from pipeline.config import EncoderConfig, load_config, to_dict
from pipeline.encoding.encoder import Encoder, load_encoder
from pipeline.labelable import labelable_tokens

_LOADED: dict[str, Encoder] = {}
_LOCK = threading.Lock()
_DEFAULT = {field.name: field.default for field in fields(EncoderConfig)}


def shared_encoder(config: EncoderConfig) -> Encoder:
    """The encoder for `config`, loaded on first use and then reused by the whole process."""
    key = json.dumps(to_dict(config), sort_keys=True)
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = load_encoder(config)
        return _LOADED[key]


class FrozenEncoder(TransformerMixin, BaseEstimator):
    """Sentence vectors from a frozen pretrained encoder; `fit` learns nothing.

    `name` is a hub id, a local folder or an alias (`minilm`, `mpnet`); `pooling` is cls, mean or
    pooler; `layer` is a hidden layer (negative from the top) or a list of layers to concatenate.
    The other parameters are as in the run configs (see `pipeline.config.EncoderConfig`).
    """

    def __init__(
        self,
        name: str = _DEFAULT["name"],
        pooling: str = _DEFAULT["pooling"],
        layer: int | list[int] = _DEFAULT["layer"],
        max_length: int = _DEFAULT["max_length"],
        long_texts: str = _DEFAULT["long_texts"],
        stride: int | None = _DEFAULT["stride"],
        precision: str = _DEFAULT["precision"],
        batch_tokens: int = _DEFAULT["batch_tokens"],
        device: str = _DEFAULT["device"],
        revision: str = _DEFAULT["revision"],
    ) -> None:
        self.name = name
        self.pooling = pooling
        self.layer = layer
        self.max_length = max_length
        self.long_texts = long_texts
        self.stride = stride
        self.precision = precision
        self.batch_tokens = batch_tokens
        self.device = device
        self.revision = revision

    def config(self) -> EncoderConfig:
        """The parameters as an `EncoderConfig`, validated like a run config's encoder section."""
        overrides = [f"encoder.{k}={json.dumps(v)}" for k, v in self.get_params().items()]
        return load_config(None, overrides).encoder

    def fit(self, texts: Sequence[str], y: object = None) -> FrozenEncoder:
        """Nothing to learn (the encoder is frozen); checks the parameters and returns self."""
        self.config()
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """One float32 vector per text, in input order (n x the encoder's vector length)."""
        encoder = shared_encoder(self.config())
        return encoder.encode(labelable_tokens(texts, encoder.tokenize))
