import json

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.evaluate import evaluate, scores
from pipeline.features import build_features
from pipeline.train import train


def test_scores_on_a_hand_checked_example():
    y_true = np.array([1, 1, 1, 0, 0])
    y_pred = np.array([1, 1, 0, 1, 0])
    result = scores(y_true, y_pred, np.array([0.9, 0.8, 0.4, 0.7, 0.1]))
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 / 3)
    assert result["roc_auc"] == pytest.approx(5 / 6)
    assert result["confusion_matrix"] == [[1, 1], [1, 2]]
    assert result["n"] == 5


def test_writes_metrics_report_and_prints_a_table(tiny_config, workdir, capsys):
    config = load_config(tiny_config)
    build_features(config, progress=False)
    train(config)
    metrics = evaluate(config)
    saved = json.loads((workdir / "reports" / "tiny" / "metrics.json").read_text())
    assert saved["classifier"] == metrics["classifier"]
    assert saved["classifier"]["n"] == 20
    baseline = saved["most_frequent_baseline"]
    assert baseline["accuracy"] == pytest.approx(0.5) and baseline["roc_auc"] == 0.5
    report = (workdir / "reports" / "tiny" / "report.md").read_text()
    assert "| accuracy |" in report and "Confusion matrix" in report
    assert "classifier" in capsys.readouterr().out
