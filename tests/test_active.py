"""The active-learning study on the tiny encoder and data: the report's shape and its numbers."""

import json

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.query import STRATEGIES
from pipeline.studies import active


def test_the_scored_sizes_grow_by_batches_then_double():
    assert active.sizes(1000) == [10, 20, 30, 40, 50, 70, 100, 150, 200, 250, 300, 400, 500,
                                  600, 800, 1000]  # fmt: skip
    assert active.sizes(35, batch=5) == [5, 10, 15, 20, 25, 35]
    assert active.sizes(20)[-1] == 20


def test_each_strategy_starts_from_zero_and_never_picks_a_text_twice():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    x = (rng.normal(size=(80, 6)) + 2 * np.eye(6)[y]).astype(np.float32)
    config = load_config(None, ["train.cv=2"])
    scored = {"eval": (x, y)}
    for strategy in STRATEGIES:
        run = active.simulate(strategy, 1, config, x, y, scored, budget=50)
        assert len(run["rows"]) == len(set(run["rows"])) == 50
        assert sorted(run["results"]) == active.sizes(50)
        assert run["results"][50]["eval"] > 0.8


def test_needs_reports_the_labels_to_reach_random_and_by_how_much_a_strategy_missed():
    table = {
        "random": {"labels": [10, 20, 40], "mean": [0.6, 0.7, 0.8]},
        "good": {"labels": [10, 20, 40], "mean": [0.7, 0.8, 0.85]},
        "bad": {"labels": [10, 20, 40], "mean": [0.5, 0.65, 0.75]},
    }
    needs = active.needs(table, everything=0.86)
    assert needs["good"]["reaches_random_at_budget"] == 20
    assert needs["good"]["within_1_point_of_all_data"] == 40
    assert needs["good"]["sizes_below_random"] == 0
    assert needs["bad"]["reaches_random_at_budget"] is None
    assert needs["bad"]["missed_random_by"] == pytest.approx(0.05)
    assert needs["bad"]["worst_gap_to_random"] == pytest.approx(-0.1)


def test_the_study_writes_json_markdown_and_a_figure(tiny_config, workdir):
    config = load_config(tiny_config)
    result = active.run_study(config, ["random", "margin", "badge"], 2, 20, "tiny")
    saved = json.loads((workdir / "reports/al/tiny.json").read_text())
    assert saved["strategies"].keys() == {"random", "margin", "badge"}
    for entry in saved["strategies"].values():
        assert entry["labels"] == [10, 20]
        assert len(entry["scores"]) == 2 and all(len(s) == 2 for s in entry["scores"])
        assert entry["mean"] == pytest.approx([np.mean(s) for s in entry["scores"]])
    assert [row["n_train"] for row in saved["random_curve"]] == [16, 40]
    assert saved["needs"]["margin"].keys() >= {"reaches_random_at_budget", "missed_random_by"}
    assert "| labels | random | margin | badge |" in (workdir / "reports/al/tiny.md").read_text()
    assert (workdir / "reports/al/tiny.png").read_bytes()[:4] == b"\x89PNG"
    assert result["budget"] == 20 and result["seeds"] == 2
