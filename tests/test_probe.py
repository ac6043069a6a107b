import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline import PipelineError
from pipeline.probe import LinearProbe, latest_model, load_probe


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32) * rng.uniform(0.1, 10, size=8)
    y = (x[:, 0] + 0.5 * x[:, 3] + rng.normal(size=200) > 0).astype(int)
    return x, y


@pytest.mark.parametrize("standardize", [False, True])
def test_same_probabilities_as_scikit_learn(xy, standardize, tmp_path):
    x, y = xy
    steps = [StandardScaler()] if standardize else []
    model = make_pipeline(*steps, LogisticRegression(C=0.3)).fit(x, y)
    probe = LinearProbe.from_sklearn(model)
    np.testing.assert_allclose(probe.predict_proba(x), model.predict_proba(x), atol=1e-10)
    probe.save(tmp_path / "p.npz")
    again = LinearProbe.load(tmp_path / "p.npz")
    np.testing.assert_allclose(again.predict_proba(x), model.predict_proba(x), atol=1e-10)


def test_wrong_width_is_a_clear_error(xy):
    x, y = xy
    probe = LinearProbe.from_sklearn(LogisticRegression().fit(x, y))
    with pytest.raises(PipelineError, match="expects 8 columns"):
        probe.predict_proba(x[:, :5])


@pytest.mark.parametrize("standardize", [False, True])
def test_softmax_matches_scikit_learn_for_k_classes(xy, standardize, tmp_path):
    x, _ = xy
    y = np.digitize(x[:, 0] + x[:, 1], [-2.0, 0.0, 2.0])  # four classes
    steps = [StandardScaler()] if standardize else []
    model = make_pipeline(*steps, LogisticRegression(C=0.3, max_iter=1000)).fit(x, y)
    probe = LinearProbe.from_sklearn(model)
    assert probe.coef.shape == (4, 8)
    np.testing.assert_allclose(probe.predict_proba(x), model.predict_proba(x), atol=1e-10)
    probe.save(tmp_path / "p.npz")
    again = LinearProbe.load(tmp_path / "p.npz")
    np.testing.assert_allclose(again.predict_proba(x), model.predict_proba(x), atol=1e-10)


def test_latest_model_is_the_newest(tiny_model, workdir):
    assert latest_model(workdir / "models") == workdir / "models" / "tiny"
    with pytest.raises(PipelineError, match="no trained classifier"):
        latest_model(workdir / "elsewhere")


def test_a_model_json_without_what_loading_reads_is_refused(tiny_model):
    meta = json.loads((tiny_model / "model.json").read_text())
    del meta["weights_sha256"]
    (tiny_model / "model.json").write_text(json.dumps(meta))
    with pytest.raises(PipelineError, match="lacks weights_sha256"):
        load_probe(tiny_model)
