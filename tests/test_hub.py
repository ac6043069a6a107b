import shutil

import pytest

from pipeline import PipelineError
from pipeline.hub import encoder_dir, weights_hash


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
