"""The fast paths change how fast the vectors come, not the labels: the same tiny config with
packing and prepacking off gives the same labels, and vectors close to the fast ones."""

import numpy as np
import pytest
from conftest import NEGATIVE, POSITIVE
from sklearn.linear_model import LogisticRegression

from pipeline.config import EncoderConfig
from pipeline.encoding.batching import embed
from pipeline.encoding.encoder import load_encoder

TRAIN = POSITIVE + NEGATIVE
DEV = [f"{text} , really" for text in TRAIN] + ["fine .", "an overlong and dull melodrama"]


def labels(encoder) -> tuple[np.ndarray, np.ndarray]:
    """Dev labels from a logistic regression fit on the train vectors, and the dev vectors."""
    train, _ = embed(encoder, TRAIN, progress=False)
    dev, _ = embed(encoder, DEV, progress=False)
    y = np.array([1] * len(POSITIVE) + [0] * len(NEGATIVE))
    return LogisticRegression(C=10.0, max_iter=2000).fit(train, y).predict(dev), dev


@pytest.mark.parametrize("model", ["tiny_encoder", "tiny_mpnet"])
def test_the_fast_paths_off_give_the_same_labels(request, model):
    config = EncoderConfig(name=str(request.getfixturevalue(model)), pooling="mean")
    fast, plain = load_encoder(config), load_encoder(config, packing=False, prepack=False)
    assert fast.packed and fast.prepacked and not plain.packed and not plain.prepacked
    fast_labels, fast_vectors = labels(fast)
    plain_labels, plain_vectors = labels(plain)
    np.testing.assert_array_equal(fast_labels, plain_labels)
    np.testing.assert_allclose(fast_vectors, plain_vectors, atol=1e-5)
    assert len(set(plain_labels)) == 2  # a probe that labels everything alike would prove nothing
