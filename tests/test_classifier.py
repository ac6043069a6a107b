"""The Python API: `from pipeline import Classifier`, loaded once, texts in, labels out."""

import json
import shutil

import numpy as np
import pytest
from conftest import ROOT, run_cli

from pipeline import PipelineError
from pipeline.classifier import Classifier
from pipeline.config import load_config
from pipeline.data.splits import load_splits
from pipeline.features import load_arrays, load_features
from pipeline.probe import load_probe


def test_probabilities_are_the_trained_features_scored(tiny_model, tiny_config):
    classifier = Classifier.load(tiny_model)
    config = load_config(tiny_config)
    texts = load_splits(config.data)["eval"].texts
    features, _ = load_arrays(load_features(config)[0], "eval")
    probe, _ = load_probe(tiny_model)

    proba = classifier.predict_proba(texts)

    assert classifier.labels == ["negative", "positive"]
    assert proba.shape == (len(texts), 2)
    np.testing.assert_allclose(proba, probe.predict_proba(features), atol=1e-5)
    assert classifier.predict(texts) == [classifier.labels[i] for i in proba.argmax(axis=1)]


def test_results_give_each_text_its_answer_or_its_error(tiny_model):
    results = Classifier.load(tiny_model).results(["a good film", " ", "awful"])
    assert [r.get("error") for r in results] == [None, "empty text", None]
    good = results[0]
    assert good["probability"] == max(good["probabilities"].values())
    assert good["p_positive"] == good["probabilities"]["positive"]


def test_unusable_input_is_a_clear_error(tiny_model):
    classifier = Classifier.load(tiny_model)
    with pytest.raises(TypeError, match="list of texts"):
        classifier.predict_proba("a good film")
    with pytest.raises(PipelineError, match="text 1: empty text"):
        classifier.predict(["a good film", "  "])
    with pytest.raises(PipelineError, match="text 0: not a string"):
        classifier.predict_proba([None, "a good film"])
    assert classifier.results([None])[0]["error"] == "not a string"


def test_import_pipeline_does_not_import_torch_until_asked(tmp_path):
    code = (
        "import sys, pipeline\n"
        "assert 'torch' not in sys.modules, 'import pipeline imported torch'\n"
        "from pipeline import Classifier, FrozenEncoder\n"
        "assert 'torch' in sys.modules and Classifier.load and FrozenEncoder().get_params()\n"
        "try:\n    pipeline.Nope\nexcept AttributeError as err:\n    print(err)\n"
    )
    result = run_cli("-c", code, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "has no attribute 'Nope'" in result.stdout


def test_a_model_from_a_newer_version_is_a_clear_error(tiny_model, tmp_path):
    newer = tmp_path / "newer"
    shutil.copytree(tiny_model, newer)
    meta = json.loads((newer / "model.json").read_text())
    meta["encoder"]["speculation"] = "on"
    (newer / "model.json").write_text(json.dumps(meta))
    with pytest.raises(PipelineError, match=r"newer sst2-probe.*speculation"):
        Classifier.load(newer)
