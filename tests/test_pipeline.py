"""End to end, as a user runs it: the stage commands in a fresh folder."""

import json

import pytest
from conftest import ROOT, run_cli

from pipeline.config import load_config
from pipeline.data.splits import load_splits
from pipeline.evaluate import evaluate
from pipeline.features import build_features, load_arrays, load_features
from pipeline.predict import predict
from pipeline.probe import load_probe
from pipeline.train import train


def test_features_train_evaluate_predict(tiny_config, workdir):
    for stage in ("features", "train", "evaluate"):
        result = run_cli("-m", f"pipeline.{stage}", "--config", str(tiny_config), cwd=workdir)
        assert result.returncode == 0, f"{stage}: {result.stderr}"
    assert "accuracy" in result.stdout
    metrics = json.loads((workdir / "reports" / "tiny" / "metrics.json").read_text())
    assert metrics["classifier"]["n"] == 20
    result = run_cli(str(ROOT / "pipeline" / "predict.py"), "a good film", "awful", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert len([line for line in result.stdout.splitlines() if "tive " in line]) == 2
    again = run_cli("-m", "pipeline.features", "--config", str(tiny_config), cwd=workdir)
    assert "cache hit" in again.stderr


def test_hub_config_offline_is_one_clear_error(workdir):
    config = str(ROOT / "configs" / "sst2-distilbert.yaml")
    result = run_cli("-m", "pipeline.features", "--config", config, cwd=workdir)
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot load dataset 'glue/sst2'")
    assert "DATA=" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_packaged_minilm_on_real_sentences(shared_data, workdir):
    """The offline encoder on 600 real SST-2 sentences: clearly better than chance."""
    config = load_config(
        ROOT / "configs" / "alammar-2000-minilm.yaml",
        [f"data.dir={shared_data / 'sst2-sentences'}", "data.limit=600", "train.cv=3"],
    )
    build_features(config, progress=False)
    train(config)
    metrics = evaluate(config)
    assert metrics["classifier"]["n"] == 150
    assert metrics["classifier"]["accuracy"] >= 0.7
    # predict.py re-encodes text the same way the features stage did
    folder, _ = load_features(config)
    x_eval, _ = load_arrays(folder, "eval")
    classifier, _ = load_probe(workdir / "models" / "alammar-2000-minilm")
    texts = load_splits(config.data)["eval"].texts[:20]
    results = predict(texts, workdir / "models" / "alammar-2000-minilm")
    expected = classifier.predict_proba(x_eval[:20])[:, 1]
    assert [r["p_positive"] for r in results] == pytest.approx(expected, abs=1e-5)
