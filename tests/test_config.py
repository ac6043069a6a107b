import pytest
from conftest import ROOT

from pipeline import PipelineError
from pipeline.config import Config, load_config


def test_defaults_are_the_blog_setup():
    config = load_config()
    assert config == Config()
    assert config.encoder.name == "distilbert-base-uncased"
    assert (config.encoder.pooling, config.encoder.layer) == ("cls", -1)
    assert (config.data.dataset, config.data.subset) == ("glue", "sst2")


def test_file_values_and_overrides(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("encoder:\n  pooling: mean\ntrain:\n  cv: 3\n")
    config = load_config(path, ["encoder.layer=-2", "train.cs=[0.5, 2]", "data.limit=100"])
    assert config.run == "mine"  # named after the file
    assert (config.encoder.pooling, config.encoder.layer) == ("mean", -2)
    assert config.train.cv == 3
    assert config.train.cs == [0.5, 2.0]
    assert config.data.limit == 100
    assert load_config(None, ["encoder.layer=[-4, -1]"]).encoder.layer == [-4, -1]
    assert config.encoder.max_length == 128  # untouched default


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    config = load_config(path)
    assert config.run == path.stem


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["encoder.poolng=mean"], "did you mean 'pooling'"),
        (["encodr.pooling=mean"], "did you mean 'encoder'"),
        (["encoder.pooling=max"], "valid values: cls, mean, pooler"),
        (["encoder.precision=fp8"], "valid values: fp32, bf16, fp16"),
        (["encoder.layer=top"], "encoder.layer must be int"),
        (["encoder.layer=[-1, top]"], "encoder.layer must be int"),
        (["encoder.max_length=1"], "encoder.max_length must be int >= 2"),
        (["train.cs=[0, 1]"], "train.cs must be a list of positive numbers"),
        (["train.standardize=maybe"], "train.standardize must be bool"),
        (["data.holdout=1.5"], "data.holdout must be a fraction"),
        (["pooling"], "not of the form key=value"),
    ],
)
def test_bad_values_are_rejected_with_a_hint(overrides, message):
    with pytest.raises(PipelineError, match=message):
        load_config(None, overrides)


def test_bad_files(tmp_path):
    with pytest.raises(PipelineError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("encoder: [unclosed\n")
    with pytest.raises(PipelineError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(PipelineError, match="expected a mapping"):
        load_config(bad)
    bad.write_text("encoder: mean\n")
    with pytest.raises(PipelineError, match="'encoder' must be a mapping"):
        load_config(bad)
