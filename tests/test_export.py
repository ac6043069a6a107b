"""`make export`: the encoder with its pooling and layers in one ONNX graph, checked against torch
before anything is kept."""

import json

import numpy as np
import pytest
from conftest import NEGATIVE, POSITIVE, ROOT, run_cli, sentences, write_tsv

from pipeline import PipelineError, export
from pipeline.classifier import Classifier
from pipeline.config import EncoderConfig, to_dict
from pipeline.encoding.encoder import pooled_layers
from pipeline.hub import weights_hash
from pipeline.io import sha256_file, write_json
from pipeline.probe import PROBE_FILE, LinearProbe

LONG = " ".join(POSITIVE + NEGATIVE)  # over max_length (32 tokens): truncated


def make_model(folder, encoder, **settings):
    """A classifier folder for `encoder` with `settings`: a random head, as train writes it."""
    config = EncoderConfig(name=str(encoder), max_length=32, batch_tokens=64, **settings)
    dim = 32 * len(pooled_layers(config))
    probe = LinearProbe(np.random.default_rng(0).normal(size=(1, dim)), np.zeros(1))
    meta = {
        "encoder": to_dict(config),
        "weights_sha256": weights_hash(encoder),
        "features": "none",
        "labels": ["negative", "positive"],
        "classifier": {"file": PROBE_FILE, "sha256": probe.save(folder / PROBE_FILE)},
    }
    write_json(folder / "model.json", meta)
    return folder


@pytest.fixture
def texts_file(tmp_path):
    """Labeled sentences of many lengths, one truncated."""
    rows = [(s, i % 2) for i, s in enumerate([*sentences(40), *POSITIVE, LONG, "ok"])]
    return write_tsv(tmp_path / "check.tsv", rows)


@pytest.mark.parametrize(
    ("encoder", "pooling", "layer"),
    [
        ("tiny_encoder", "cls", -1),
        ("tiny_encoder", "mean", [0, -1]),  # the embeddings and the last layer, concatenated
        ("tiny_mpnet", "pooler", -1),
        ("tiny_mpnet", "mean", [-2, -1]),
    ],
)
def test_onnx_gives_torch_vectors_and_labels(
    request, tmp_path, texts_file, encoder, pooling, layer
):
    model = make_model(tmp_path, request.getfixturevalue(encoder), pooling=pooling, layer=layer)

    entry = export.export(model, texts_file=texts_file)

    meta = json.loads((model / "model.json").read_text())
    assert meta["onnx"] == entry
    for name in ("model", "tokenizer"):
        assert sha256_file(model / entry[name]["file"]) == entry[name]["sha256"]
    assert entry["check"]["max_abs_diff"] <= 1e-4 and entry["check"]["n"] == 52
    texts = [LONG, "a good film", "fun , warm and moving", *sentences(20)]
    onnx, torch = Classifier.load(model, "onnx"), Classifier.load(model, "torch")
    assert (onnx.engine, torch.engine) == ("onnx", "torch")
    vectors = onnx.encoder.encode(texts)
    assert vectors.shape == (len(texts), 32 * len(pooled_layers(EncoderConfig(layer=layer))))
    np.testing.assert_allclose(vectors, torch.encoder.encode(texts), atol=1e-4)
    assert onnx.predict(texts) == torch.predict(texts)


def test_a_failed_check_writes_nothing(tmp_path, tiny_encoder, texts_file, monkeypatch):
    model = make_model(tmp_path / "model", tiny_encoder, pooling="mean")
    before = {path.name: path.read_bytes() for path in model.iterdir()}
    monkeypatch.setattr(export, "FP32_MAX_DIFF", -1.0)  # no export can pass

    with pytest.raises(PipelineError, match="failed its check, so nothing was kept"):
        export.export(model, texts_file=texts_file)

    assert {path.name: path.read_bytes() for path in model.iterdir()} == before


def test_int8_quantizes_all_but_the_down_projection(tmp_path, tiny_encoder, texts_file):
    import onnx

    model = make_model(tmp_path, tiny_encoder, pooling="mean")

    entry = export.export(model, "int8", texts_file)

    ops = [node.op_type for node in onnx.load(str(model / "encoder.onnx")).graph.node]
    assert ops.count("MatMulInteger") == 2 * 5  # q, k, v, attention out, FFN up in 2 layers
    assert entry["precision"] == "int8" and entry["check"]["mean_cosine"] >= 0.995
    assert entry["check"]["accuracy_fp32"] - entry["check"]["accuracy_int8"] <= 0.003
    assert Classifier.load(model).engine == "onnx"


def test_int8_needs_labeled_sentences(tmp_path, tiny_encoder):
    model = make_model(tmp_path, tiny_encoder, pooling="mean")
    unlabeled = tmp_path / "texts.tsv"
    unlabeled.write_text("sentence\na good film\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="needs labeled sentences"):
        export.export(model, "int8", unlabeled)


def test_the_command_explains_itself_and_fails_cleanly(tmp_path):
    helped = run_cli("-m", "pipeline.export", "--help", cwd=ROOT)
    assert helped.returncode == 0
    assert "1e-4" in helped.stdout and "int8" in helped.stdout
    missing = run_cli("-m", "pipeline.export", "--model", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode == 2
    assert "no trained classifier" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.slow
def test_minilm_exports_within_the_limits(tmp_path, shared_data):
    """The packaged MiniLM, mean pooling, a head fit on 2,000 GLUE sentences: fp32 and int8."""
    from sklearn.linear_model import LogisticRegression

    from pipeline.data.splits import read_split
    from pipeline.encoding.encoder import load_encoder
    from pipeline.hub import encoder_dir

    config = EncoderConfig(name="minilm", pooling="mean")
    train = read_split(shared_data / "sst2-glue" / "train.tsv")
    x = load_encoder(config).encode(list(train.texts[:2000]))
    head = LinearProbe.from_sklearn(LogisticRegression(max_iter=1000).fit(x, train.labels[:2000]))
    folder = encoder_dir("minilm")
    meta = {
        "encoder": to_dict(config),
        "weights_sha256": weights_hash(folder),
        "features": "none",
        "labels": ["negative", "positive"],
        "classifier": {"file": PROBE_FILE, "sha256": head.save(tmp_path / PROBE_FILE)},
    }
    write_json(tmp_path / "model.json", meta)
    dev = shared_data / "sst2-glue" / "dev.tsv"

    fp32 = export.export(tmp_path, "fp32", dev)["check"]
    int8 = export.export(tmp_path, "int8", dev)["check"]

    assert fp32["max_abs_diff"] <= 1e-4 and fp32["labels_differing"] == 0
    assert int8["mean_cosine"] >= 0.995
    assert int8["accuracy_fp32"] - int8["accuracy_int8"] <= 0.003
