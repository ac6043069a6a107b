import json

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.evaluate import by_length, confidently_wrong, evaluate, scores
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
    for name in ("confusion_matrix", "roc_curve", "reliability", "accuracy_by_length"):
        png = workdir / "reports" / "tiny" / f"{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG", name
        assert f"![{name}]({name}.png)" in report
    assert sum(row["n"] for row in saved["by_length"]) == 20
    wrong = saved["most_confidently_wrong"]
    assert len(wrong) <= 10
    assert [w["p_wrong_label"] for w in wrong] == sorted(
        (w["p_wrong_label"] for w in wrong), reverse=True
    )
    assert all(w["p_wrong_label"] > 0.5 for w in wrong)
    assert "classifier" in capsys.readouterr().out


def test_by_length_and_confidently_wrong_on_a_hand_checked_example():
    texts = ["one", "two words", "a b c d e f g", "x " * 40]
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.4, 0.1])
    rows = by_length(texts, y, p)
    assert rows == [
        {"words": "1-5", "n": 2, "accuracy": 0.5},
        {"words": "6-10", "n": 1, "accuracy": 0.0},
        {"words": "31+", "n": 1, "accuracy": 1.0},
    ]
    wrong = confidently_wrong(texts, y, p)
    assert [w["text"] for w in wrong] == ["two words", "a b c d e f g"]
    assert wrong[0] == {"text": "two words", "label": "negative", "p_wrong_label": 0.8}
