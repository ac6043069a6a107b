"""The frozen encoder as a scikit-learn transformer: clone, cross-validation, grid search."""

import pickle
import re

import numpy as np
import pytest
from conftest import NEGATIVE, POSITIVE, ROOT, run_cli
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

from pipeline import PipelineError, frozen_encoder
from pipeline.config import EncoderConfig, load_config, to_dict
from pipeline.data.splits import load_splits
from pipeline.features import build_features, load_arrays, load_features
from pipeline.frozen_encoder import FrozenEncoder

TEXTS = POSITIVE + NEGATIVE
LABELS = [1] * len(POSITIVE) + [0] * len(NEGATIVE)


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """An empty encoder cache; every load from now on is recorded (by its pooling)."""
    seen: list[str] = []
    load = frozen_encoder.load_encoder
    monkeypatch.setattr(frozen_encoder, "_LOADED", {})
    monkeypatch.setattr(
        frozen_encoder, "load_encoder", lambda config: seen.append(config.pooling) or load(config)
    )
    return seen


def test_vectors_are_the_features_stage_vectors(tiny_config, tiny_encoder, workdir):
    config = load_config(tiny_config)
    build_features(config, progress=False)
    features, _ = load_arrays(load_features(config)[0], "eval")
    texts = load_splits(config.data)["eval"].texts

    vectors = FrozenEncoder(str(tiny_encoder), pooling="mean", max_length=32).fit_transform(texts)

    assert vectors.dtype == np.float32 and vectors.shape == features.shape
    np.testing.assert_allclose(vectors, features, atol=1e-5)


def test_pipeline_clones_cross_validates_and_grid_searches_loading_each_setting_once(
    tiny_encoder, loads
):
    model = make_pipeline(FrozenEncoder(str(tiny_encoder)), LogisticRegression())
    assert clone(model).get_params()["frozenencoder__name"] == str(tiny_encoder)

    cross_val_score(model, TEXTS, LABELS, cv=2)  # clones for each fold: no load of its own
    grid = {"frozenencoder__pooling": ["mean", "cls"]}
    search = GridSearchCV(model, grid, cv=2).fit(TEXTS, LABELS)

    assert sorted(loads) == ["cls", "mean"]  # once per setting, not per clone, fold or call
    best = search.best_params_["frozenencoder__pooling"]
    again = FrozenEncoder(str(tiny_encoder), pooling=best).fit_transform(TEXTS)
    np.testing.assert_array_equal(search.best_estimator_[0].transform(TEXTS), again)
    refit = LogisticRegression().fit(again, LABELS)
    np.testing.assert_array_equal(search.predict(TEXTS), refit.predict(again))
    assert len(pickle.dumps(search.best_estimator_[0])) < 1000  # settings only, no weights


def test_defaults_are_the_run_configs_encoder_defaults():
    params, defaults = FrozenEncoder().get_params(), to_dict(EncoderConfig())
    assert params == {key: defaults[key] for key in params}
    assert set(defaults) - set(params) == {"runner"}  # Ray Data actors are for stages, not here
    assert FrozenEncoder().config() == EncoderConfig()


def test_bad_settings_and_inputs_are_clear_errors(tiny_encoder):
    with pytest.raises(PipelineError, match=r"encoder\.pooling: unknown value 'max'"):
        FrozenEncoder(str(tiny_encoder), pooling="max").fit(TEXTS)
    with pytest.raises(TypeError, match="list of texts"):
        FrozenEncoder(str(tiny_encoder)).transform("a good film")


def test_the_readme_example_runs_as_written(shared_data):
    if not (shared_data / "sst2-sentences" / "train.tsv").is_file():
        pytest.skip("the blog's sentences are not at ../shared/data/sst2-sentences")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(from sklearn.*?)```", readme, re.S).group(1)
    assert "FrozenEncoder" in example
    result = run_cli("-c", example, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    accuracy, search = result.stdout.splitlines()
    assert 0.55 < float(accuracy) <= 1.0  # 3-fold CV on 200 sentences: well above chance
    assert search.endswith("[1]")  # "a visually stunning rumination" is positive
