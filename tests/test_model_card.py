"""The model card: README.md in every model folder, Hugging Face layout, from what was recorded."""

import json

import pytest
import yaml
from conftest import NEGATIVE, POSITIVE, write_tsv

from pipeline.config import DataConfig, load_config
from pipeline.evaluate import evaluate
from pipeline.features import build_features
from pipeline.io import write_json
from pipeline.model_card import base_model, data_entry, reading, write_model_card
from pipeline.train import train


def read_card(model_dir):
    """(front matter, body) of model_dir/README.md."""
    text = (model_dir / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n") and "&id0" not in text  # plain YAML, no anchors
    front, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(front), body


@pytest.fixture
def config(tiny_config, tiny_data, workdir):
    """The tiny run, with a labeled test split too."""
    write_tsv(
        tiny_data / "test.tsv", [(s + " ?", 1) for s in POSITIVE] + [(s, 0) for s in NEGATIVE]
    )
    config = load_config(tiny_config)
    build_features(config, progress=False)
    return config


def test_train_writes_the_card_and_evaluate_brings_it_up_to_date(config, tiny_encoder, workdir):
    model = train(config)
    front, body = read_card(model)
    assert front["labels"] == ["negative", "positive"]
    assert front["pipeline_tag"] == "text-classification"
    assert front["license"] == "other" and "base_model" not in front  # a local encoder
    assert front["encoder"] == {
        "name": tiny_encoder.name, "pooling": "mean", "layer": -1, "max_length": 32,
        "long_texts": "chunk",
    }  # fmt: skip
    assert "model-index" not in front and "Not evaluated yet" in body
    assert "A text longer than 32 tokens is read whole, in overlapping windows" in body
    assert "- train: train.tsv, 40 sentences" in body and "- test: test.tsv, 20" in body
    assert "## Intended use" in body and "sst2-probe predict --model models/tiny" in body
    assert "after `make export MODEL=models/tiny`" in body
    assert str(workdir) not in body  # no local paths

    metrics = evaluate(config)
    card = write_model_card(model)
    front, body = read_card(model)
    (result, test), ours = front["model-index"][0]["results"], metrics["classifier"]
    assert front["model-index"][0]["name"] == "tiny"
    assert result["task"]["type"] == "text-classification"
    assert result["dataset"] == {"type": "sst2", "name": "sst2", "split": "dev"}
    assert result["metrics"][0] == {"type": "accuracy", "value": ours["accuracy"]}
    assert result["metrics"][1]["value"] == ours["macro_f1"]
    assert test["dataset"]["split"] == "test"
    assert test["metrics"][0]["value"] == metrics["test"]["classifier"]["accuracy"]
    baseline = metrics["most_frequent_baseline"]
    assert f"| dev.tsv | most frequent class | {baseline['accuracy']:.4f} |" in body
    assert f"| dev.tsv | this classifier | {ours['accuracy']:.4f} |" in body

    before, stamp = card.read_text(), card.stat().st_mtime_ns
    assert write_model_card(model, metrics) == card  # evaluate's own metrics: the same card
    assert card.read_text() == before and card.stat().st_mtime_ns == stamp  # not rewritten


def test_the_front_matter_is_what_the_hub_reads(config):
    hub = pytest.importorskip("huggingface_hub")
    model = train(config)
    metrics = evaluate(config)
    write_model_card(model)
    card = hub.ModelCard((model / "README.md").read_text(encoding="utf-8"))
    results = card.data.eval_results
    assert card.data.model_name == "tiny"
    assert [r.metric_type for r in results] == ["accuracy", "f1", "accuracy", "f1"]
    assert results[0].metric_value == metrics["classifier"]["accuracy"]
    assert results[0].task_type == "text-classification" and results[0].dataset_split == "dev"


def test_kfold_scores_are_named_by_the_protocol(tiny_config, workdir):
    config = load_config(tiny_config, ["data.protocol=kfold", "data.folds=4"])
    build_features(config, progress=False)
    model = train(config)
    metrics = evaluate(config)
    write_model_card(model)
    front, body = read_card(model)
    (result,) = front["model-index"][0]["results"]
    assert result["dataset"]["split"] == "train, out of fold (4 folds)" == metrics["scored"]
    assert result["metrics"][0]["value"] == metrics["classifier"]["accuracy"]
    assert "| train, out of fold (4 folds) | this classifier |" in body


def test_metrics_of_another_classifier_are_left_out(config, workdir):
    model = train(config)
    evaluate(config)
    path = workdir / "reports" / "tiny" / "metrics.json"
    older = json.loads(path.read_text()) | {"created": "2000-01-01T00:00:00+00:00"}
    write_json(path, older)  # scored before this classifier was trained
    write_model_card(model)
    assert "model-index" not in read_card(model)[0]
    path.write_text("{damaged")
    write_model_card(model)
    assert "Not evaluated yet" in read_card(model)[1]


def test_export_brings_it_up_to_date(config, tiny_data):
    from pipeline.export import export

    model = train(config)
    export(model, texts_file=tiny_data / "dev.tsv")
    write_model_card(model)
    front, body = read_card(model)
    assert "onnx" in front["tags"]
    assert "(exported: fp32" in body and "labels_differing 0" in body


def test_a_hand_made_model_json_gets_a_card(tmp_path):
    write_json(
        tmp_path / "model.json",
        {
            "encoder": {"name": "minilm", "pooling": "mean", "layer": -1, "max_length": 128},
            "features": "none",
            "labels": ["no", "yes"],
        },
    )
    front, body = read_card(write_model_card(tmp_path).parent)
    assert front["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert front["license"] == "apache-2.0" and front["labels"] == ["no", "yes"]
    assert f"# {tmp_path.name}" in body and "not recorded" in body


@pytest.mark.parametrize(
    ("origin", "source", "split"),
    [
        ({"file": "/data/sst2/dev.tsv", "chosen": ""}, "dev.tsv", "dev"),
        ({"file": "/d/train.tsv", "chosen": "held out 25%, seed 42"},
         "train.tsv (held out 25%, seed 42)", "train (held out 25%, seed 42)"),
        ({"file": "hub:glue/sst2:validation", "chosen": ""}, "hub:glue/sst2:validation",
         "validation"),
    ],
)  # fmt: skip
def test_sources_lose_their_folders(origin, source, split):
    entry = data_entry(DataConfig(), {"eval": {"n": 3, "origin": origin, "truncated": 0}})
    assert entry["splits"]["eval"] == {"n": 3, "source": source, "split": split, "truncated": 0}


def test_base_model_is_a_hub_id_or_nothing():
    assert base_model("mpnet") == "sentence-transformers/all-mpnet-base-v2"
    assert base_model("distilbert-base-uncased") == "distilbert-base-uncased"
    assert base_model("/tmp/tiny-distilbert0") is None
    assert base_model("./encoders/mine") is None


def test_the_card_says_how_much_of_a_long_text_is_read():
    train = {"n": 40, "truncated": 3}
    truncate = reading({"max_length": 32, "long_texts": "truncate"}, train)
    assert truncate == (
        "Only the first 32 tokens of a text are read; the rest is cut off (3 of 40 train sentences "
        "were)."
    )
    assert reading({"max_length": 32}, {}).startswith("Only the first 32 tokens")  # older models
    assert "read whole, in overlapping windows of 32" in reading(
        {"max_length": 32, "long_texts": "chunk"}, train
    )
