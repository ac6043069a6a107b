import shutil

import pytest
from test_features import age

from pipeline import PipelineError, hub
from pipeline.hub import check_weights, encoder_dir, stamps, weight_files, weights_hash


def test_minilm_alias_is_the_packaged_model():
    folder = encoder_dir("minilm")
    assert (folder / "model.safetensors").is_file()
    assert (folder / "vocab.txt").is_file()


def test_local_folder_is_used_as_is(tiny_encoder):
    assert encoder_dir(str(tiny_encoder)) == tiny_encoder


def test_unknown_encoder_offline_is_a_clear_error():
    with pytest.raises(PipelineError, match=r"encoder\.name=minilm") as err:
        encoder_dir("no-such-org/no-such-model")
    assert "not available from the hub" in str(err.value)


def test_weights_hash_follows_the_weights(tiny_encoder, tmp_path):
    copy = shutil.copytree(tiny_encoder, tmp_path / "copy")
    assert weights_hash(copy) == weights_hash(tiny_encoder)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert weights_hash(copy) != weights_hash(tiny_encoder)
    weights.unlink()
    with pytest.raises(PipelineError, match="safetensors"):
        weights_hash(copy)


def test_stamps_of_a_file_that_just_changed_are_not_trusted(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("a")
    assert stamps([path]) is None  # a second change in the same clock tick would keep them
    age(path)
    [(name, size, mtime_ns)] = stamps([path])
    assert (name, size, mtime_ns) == (str(path), 1, path.stat().st_mtime_ns)
    assert stamps([tmp_path / "missing"]) is None


def test_check_weights_trusts_stamps_until_they_change(tiny_encoder, tmp_path):
    copy = shutil.copytree(tiny_encoder, tmp_path / "copy")
    age(*weight_files(copy))
    sha, recorded = weights_hash(copy), stamps(weight_files(copy))
    assert check_weights(copy, sha, recorded)
    assert check_weights(copy, sha, None)  # nothing recorded: hashed
    age(copy / "config.json", seconds=50)  # touched, the same bytes: hashed again, still the same
    assert check_weights(copy, sha, recorded)
    assert not check_weights(copy, "0" * 64, recorded)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    age(weights, seconds=50)
    assert not check_weights(copy, sha, recorded)


def test_check_weights_does_not_hash_behind_unchanged_stamps(tiny_encoder, tmp_path, monkeypatch):
    copy = shutil.copytree(tiny_encoder, tmp_path / "copy")
    age(*weight_files(copy))
    recorded = stamps(weight_files(copy))
    monkeypatch.setattr(hub, "sha256_file", lambda _: pytest.fail("hashed behind fresh stamps"))
    assert check_weights(copy, "recorded-sha256", recorded)
