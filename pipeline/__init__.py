"""sst2-probe: SST-2 sentiment with a frozen transformer encoder and a logistic regression.

Stages (each a module, each runnable as ``python -m pipeline.<stage>``):
features -> train -> evaluate, and predict for new text.

From code: ``from pipeline import Classifier`` (a trained classifier, loaded once) and
``from pipeline import FrozenEncoder`` (the encoder as a scikit-learn transformer). Both are
imported on first use, so ``import pipeline`` stays light and does not import torch.
"""

import importlib
import logging
from typing import Any

# transformers imports torchao (the int8 precision's library) whenever it is installed, and
# torchao's import warns on every run about its CUDA-only kernels and a torch deprecation
for _noisy in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)

_LAZY = {
    "Classifier": "pipeline.classifier",
    "FrozenEncoder": "pipeline.frozen_encoder",
}


class PipelineError(Exception):
    """A problem the user can fix (bad config, bad data, missing artifact).

    The command-line entry points print its message without a traceback and exit with code 2.
    """


def __getattr__(name: str) -> Any:
    """Import `Classifier` and `FrozenEncoder` (and with them torch) only when first asked for."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
