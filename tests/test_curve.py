"""Learning curves: the draws, the fits, and a whole curve on the tiny encoder."""

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from pipeline import PipelineError
from pipeline.config import load_config
from pipeline.studies import curve
from pipeline.train import logistic_regression_cv


@pytest.fixture
def xy():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], [60, 40, 12])
    x = rng.normal(size=(len(y), 4)) + y[:, None]
    return x, y


def test_a_draw_is_stratified_and_a_prefix_of_the_larger_ones(xy):
    _, y = xy
    small, large = curve.draw(y, 8, seed=3), curve.draw(y, 16, seed=3)
    assert np.bincount(y[small]).tolist() == [8, 8, 8]
    assert np.bincount(y[large]).tolist() == [16, 16, 12]  # all of the smallest class
    for k in range(3):
        assert (
            large[y[large] == k][: len(small[y[small] == k])].tolist()
            == small[y[small] == k].tolist()
        )
    assert curve.draw(y, 8, seed=4).tolist() != small.tolist()
    assert curve.draw(y, 8, seed=3).tolist() == small.tolist()
    assert curve.draw(y, None, seed=3).tolist() == list(range(len(y)))


def test_c_is_cross_validated_only_with_enough_sentences_per_class(xy):
    x, y = xy
    config = load_config(None, ["train.cv=3", "train.cs=[0.01,100.0]"])
    scored = {"eval": (x, y)}
    few = curve.draw(y, 5, seed=0)  # fewer than 2 x 3 per class: the fixed C
    result = curve.fit_and_score(config, x, y, few, scored)
    expected = LogisticRegression(C=curve.FIXED_C, max_iter=2000).fit(x[few], y[few]).score(x, y)
    assert result == {"C": curve.FIXED_C, "eval": pytest.approx(expected)}
    rows = curve.draw(y, 6, seed=0)
    search = logistic_regression_cv(config).fit(x[rows], y[rows])
    result = curve.fit_and_score(config, x, y, rows, scored)
    assert result["C"] == search.best_params_["logisticregression__C"]
    assert result["eval"] == pytest.approx(search.score(x, y))


def test_summary_has_the_t_interval_of_the_mean():
    got = curve.summary([0.5, 0.6, 0.7], "test_")
    assert got["test_mean"] == pytest.approx(0.6)
    assert got["test_std"] == pytest.approx(0.1)
    half = 4.302653 * 0.1 / np.sqrt(3)  # t(0.975, 2)
    assert got["test_ci95"] == pytest.approx([0.6 - half, 0.6 + half])


def test_sizes_are_parsed_and_checked():
    assert curve.parse_sizes("8, 16,all") == [8, 16, None]
    for bad in ("8,x", "0", ","):
        with pytest.raises(PipelineError, match="SIZES"):
            curve.parse_sizes(bad)


def test_a_whole_curve_on_cached_features(tiny_config, workdir):
    from pipeline.features import build_features, load_arrays

    config = load_config(tiny_config)
    folder = build_features(config, progress=False)
    result = curve.run_curve([config], [2, 4, 64, None], 3, "tiny")  # 64: all of every class
    written = json.loads((workdir / "reports/curve/tiny.json").read_text())
    assert written == json.loads(json.dumps(result))
    assert (workdir / "reports/curve/tiny.png").stat().st_size > 0
    assert "| all | 40 |" in (workdir / "reports/curve/tiny.md").read_text()
    sizes = written["curves"][0]["sizes"]
    assert [s["n_per_class"] for s in sizes] == [2, 4, 64, "all"]
    assert [s["n_train"] for s in sizes] == [4, 8, 40, 40]
    for size in sizes:
        assert len(size["scores"]) == 3
        assert size["mean"] == pytest.approx(np.mean(size["scores"]))
    x, y = load_arrays(folder, "train")
    full = logistic_regression_cv(config).fit(x, y).score(*load_arrays(folder, "eval"))
    assert sizes[-1]["scores"] == sizes[-2]["scores"] == pytest.approx([full] * 3)


def test_a_curve_needs_an_eval_split(tiny_config, workdir):
    config = load_config(tiny_config, ["data.protocol=kfold"])
    with pytest.raises(PipelineError, match="protocol=holdout"):
        curve.run_curve([config], [2], 2, "tiny")
