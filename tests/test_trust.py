"""Trust: nothing unpickled, checksums before loading, no mixing of encoders or features."""

import json
import shutil

import numpy as np
import pytest
from conftest import ROOT, run_cli

from pipeline import PipelineError
from pipeline.config import load_config
from pipeline.evaluate import evaluate
from pipeline.features import build_features
from pipeline.io import sha256_file
from pipeline.predict import predict
from pipeline.probe import load_probe
from pipeline.train import train


@pytest.fixture
def trained(tiny_config, workdir):
    config = load_config(tiny_config)
    build_features(config, progress=False)
    return config, train(config)


def test_a_changed_classifier_file_is_refused(trained):
    _, model_dir = trained
    with open(model_dir / "classifier.npz", "ab") as handle:
        handle.write(b"\x00")
    with pytest.raises(PipelineError, match="SHA-256 does not match"):
        load_probe(model_dir)


def test_a_pickle_inside_the_file_is_never_loaded(tmp_path):
    path = tmp_path / "classifier.npz"
    np.savez(path, coef=np.array([object()], dtype=object), intercept=np.zeros(1))
    meta = {"classifier": {"file": path.name, "sha256": sha256_file(path)}}
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(PipelineError, match="not a classifier file"):
        load_probe(tmp_path)


def test_joblib_file_is_never_loaded_by_the_pipeline(tiny_config, workdir):
    config = load_config(tiny_config, ["train.save_joblib=true"])
    build_features(config, progress=False)
    model_dir = train(config)
    (model_dir / "classifier.joblib").write_bytes(b"not a pickle at all")
    assert predict(["a good film"], model_dir)[0]["label"] in ("positive", "negative")
    evaluate(config)


def test_classifier_from_other_features_is_refused(trained, tiny_config):
    cls = load_config(tiny_config, ["encoder.pooling=cls"])
    build_features(cls, progress=False)
    with pytest.raises(PipelineError, match="trained on features"):
        evaluate(cls)


def test_other_encoder_weights_are_refused(tiny_config, tiny_encoder, workdir):
    encoder = shutil.copytree(tiny_encoder, workdir / "encoder")
    config = load_config(tiny_config, [f"encoder.name={encoder}"])
    build_features(config, progress=False)
    model_dir = train(config)
    weights = encoder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    result = run_cli(
        str(ROOT / "pipeline" / "predict.py"), "--model", str(model_dir), "fine", cwd=workdir
    )
    assert result.returncode == 2
    assert "other weights than the ones" in result.stderr and "Traceback" not in result.stderr
