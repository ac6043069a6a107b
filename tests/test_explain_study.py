"""The explanation study (`make explain-study`): ERASER's measures through `Classifier.results`,
LIME on the same words, plausibility against one-word labels, and its report."""

import json
import math

import pytest
from conftest import write_tsv

from pipeline.config import load_config
from pipeline.explain import DEFAULT_METHOD, METHODS
from pipeline.studies import explain_study as study
from pipeline.studies.eraser import K_PERCENT


def test_the_study_scores_every_method_random_order_and_lime(tiny_model, tiny_config):
    glue = write_tsv(tiny_model.parent / "glue.tsv", [("good", 1), ("awful", 0), ("dull", 0)])
    report = study.explain_study(
        load_config(tiny_config), tiny_model, sentences=8, lime=3, samples=60, timed=2, glue=glue
    )

    assert set(report["methods"]) == {*METHODS, "random", "lime"}
    assert report["default"] == DEFAULT_METHOD and report["sentences"] == 8
    lime = report["methods"]["lime"]
    assert lime["sentences"] == 3 and lime["cost"]["calls"] == 60
    for name in METHODS:
        m = report["methods"][name]
        assert len(m["eval"]["comprehensiveness_at_k"]) == len(K_PERCENT)
        assert math.isfinite(m["lime_subset"]["sufficiency"])
        assert 1 < m["cost"]["calls"] <= 100 and m["cost"]["explain_over_embed"] > 0
        assert "plausibility" in m["eval"] and "plausibility" in m["lime_subset"]
        assert math.isfinite(m["lime_subset"]["comprehensiveness_minus_lime_se"])
    assert set(report["targets"]) >= {"comprehensiveness >= LIME's", "sufficiency <= LIME's"}
    written = study.REPORTS / f"{report['run']}.json"
    assert json.loads(written.read_text())["methods"].keys() == report["methods"].keys()
    markdown = written.with_suffix(".md").read_text()
    assert "| lime |" in markdown and f"default method: {DEFAULT_METHOD}" in markdown
    random_rows = [line for line in markdown.splitlines() if line.startswith("| random |")]
    assert random_rows and all(line.endswith("| - | - |") for line in random_rows)  # no cost


def test_lime_is_kept_per_sentence_and_not_run_again_for_the_same_model(tiny_model, tiny_config):
    config = load_config(tiny_config)
    first = study.explain_study(config, tiny_model, sentences=4, lime=2, samples=40, timed=0)
    kept = json.loads((study.REPORTS / f"{config.run}-lime.json").read_text())
    assert len(kept["sentences"]) == 2 and all(k.startswith("40 0 ") for k in kept["sentences"])

    again = study.explain_study(config, tiny_model, sentences=4, lime=3, samples=40, timed=0)
    lime, before = again["methods"]["lime"], first["methods"]["lime"]
    kept = json.loads((study.REPORTS / f"{config.run}-lime.json").read_text())
    assert len(kept["sentences"]) == 3  # only the new sentence was explained
    seconds = [entry["seconds"] for entry in kept["sentences"].values()]
    assert lime["cost"]["ms_batched"] == pytest.approx(1e3 * sum(seconds) / 3, rel=1e-12)
    # the same two sentences' times, kept: a second LIME run would have taken other times
    assert before["cost"]["ms_batched"] == pytest.approx(1e3 * sum(seconds[:2]) / 2, rel=1e-12)
