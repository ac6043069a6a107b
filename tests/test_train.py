import json

import pytest
from test_features import age

from pipeline import PipelineError
from pipeline.config import load_config
from pipeline.features import build_features
from pipeline.hub import check_weights, stamps, weight_files
from pipeline.probe import load_probe
from pipeline.train import train


@pytest.fixture
def features(tiny_config, workdir):
    config = load_config(tiny_config)
    build_features(config, progress=False)
    return config


def test_saves_classifier_and_what_made_it(features, workdir):
    model_dir = train(features)
    assert model_dir.resolve() == workdir / "models" / "tiny"
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["C"] in (0.1, 10.0)
    assert set(meta["cv_grid"]) == {"0.1", "10.0"}
    assert meta["cv_accuracy"] == max(meta["cv_grid"].values())
    assert meta["encoder"]["pooling"] == "mean" and meta["encoder"]["max_length"] == 32
    assert meta["labels"] == ["negative", "positive"]
    assert meta["n_train"] == 40 and meta["dim"] == 32
    assert {"scikit-learn", "transformers", "torch"} <= set(meta["versions"])
    assert not (model_dir / "classifier.joblib").exists()  # no pickle unless asked for
    data = meta["data"]
    assert data["dir"] == "sst2" and data["protocol"] == "split"  # a folder by name only
    assert data["splits"]["train"] == {
        "n": 40,
        "source": "train.tsv",
        "split": "train",
        "truncated": 0,
    }
    assert data["splits"]["eval"]["source"] == "dev.tsv"
    assert (model_dir / "README.md").read_text().startswith("---\nlicense: ")  # the model card
    classifier, _ = load_probe(model_dir)
    assert classifier.predict_proba([[0.0] * 32]).shape == (1, 2)


def test_records_the_weight_stamps_that_check_weights_trusts(tiny_config, tiny_encoder, workdir):
    age(*weight_files(tiny_encoder))
    config = load_config(tiny_config)
    build_features(config, progress=False)
    meta = json.loads((train(config) / "model.json").read_text())
    assert meta["weights_stamps"] == stamps(weight_files(tiny_encoder))
    assert check_weights(tiny_encoder, meta["weights_sha256"], meta["weights_stamps"])


def test_refuses_features_of_data_changed_since(tiny_config, tiny_data, tiny_encoder, workdir):
    config = load_config(tiny_config)
    folder = build_features(config, progress=False)
    age(*tiny_data.iterdir(), *weight_files(tiny_encoder), *folder.glob("*.npy"))
    train(config)  # finds the features by hashes and records their stamps
    age(tiny_data / "dev.tsv", seconds=50)  # touched, the same bytes
    train(config)
    train_file = tiny_data / "train.tsv"
    train_file.write_text(train_file.read_text().replace("\t1\n", "\t0\n", 1))
    age(train_file, seconds=50)
    with pytest.raises(PipelineError, match="run `make features`"):
        train(config)


def test_joblib_only_when_asked(tiny_config, workdir):
    config = load_config(tiny_config, ["train.save_joblib=true"])
    build_features(config, progress=False)
    meta = json.loads((train(config) / "model.json").read_text())
    assert meta["joblib"]["file"] == "classifier.joblib"
    assert len(meta["joblib"]["sha256"]) == 64


def test_standardize_adds_a_scaler(tiny_config, workdir):
    config = load_config(tiny_config, ["train.standardize=true"])
    build_features(config, progress=False)
    classifier, meta = load_probe(train(config))
    assert meta["standardize"] is True
    assert classifier.mean is not None and classifier.scale is not None


def test_too_few_sentences_for_the_folds(tiny_config, workdir):
    config = load_config(tiny_config, ["train.cv=25"])
    build_features(config, progress=False)
    with pytest.raises(PipelineError, match="too few for 25-fold"):
        train(config)


def test_missing_classifier(workdir):
    with pytest.raises(PipelineError, match="run `make train` first"):
        load_probe(workdir / "models" / "nothing")
