import json
import os
import shutil
import time

import numpy as np
import pytest
from conftest import run_cli

from pipeline import PipelineError, feature_cache
from pipeline.config import load_config
from pipeline.data import splits
from pipeline.encoding import batching, encoder
from pipeline.features import build_features, load_arrays, load_features
from pipeline.hub import weight_files


def age(*paths, seconds=100):
    """Set the files' mtime `seconds` back: older than the 2 s in which stamps are not trusted."""
    when = time.time_ns() - seconds * 10**9
    for path in paths:
        os.utime(path, ns=(when, when))


def forbid(monkeypatch, module, *names):
    """Make `module.<name>` fail the test when called."""
    for name in names:

        def fail(*_, name=name, **__):
            raise AssertionError(f"{name} was called")

        monkeypatch.setattr(module, name, fail)


@pytest.fixture
def stamped(tiny_config, tiny_data, tiny_encoder, workdir):
    """Features built, then their files aged and a second run that records their stamps."""
    config = load_config(tiny_config)
    folder = build_features(config, progress=False)
    age(*tiny_data.iterdir(), *weight_files(tiny_encoder), *folder.glob("*.npy"))
    assert build_features(config, progress=False) == folder
    return config, folder


def test_writes_arrays_labels_and_meta(tiny_config, workdir):
    folder = build_features(load_config(tiny_config), progress=False)
    assert folder.parent.resolve() == workdir / "data" / "features"
    x, y = load_arrays(folder, "train")
    assert x.shape == (40, 32) and x.dtype == np.float32
    assert y.tolist() == [1] * 10 + [0] * 10 + [1] * 10 + [0] * 10
    assert load_arrays(folder, "eval")[0].shape == (20, 32)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["complete"] is True
    assert meta["inputs"]["pooling"] == "mean"
    assert meta["splits"]["train"]["arrays"]["train"]["shape"] == [40, 32]
    assert not list(folder.parent.glob("*.partial"))


def test_second_run_is_a_cache_hit_that_loads_no_model(tiny_config, workdir, monkeypatch):
    config = load_config(tiny_config)
    first = build_features(config, progress=False)

    def no_model(*_):
        raise AssertionError("the encoder was loaded on a cache hit")

    monkeypatch.setattr(encoder, "load_encoder", no_model)
    assert build_features(config, progress=False) == first


def test_cache_hit_does_not_import_torch(tiny_config, workdir):
    build_features(load_config(tiny_config), progress=False)
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO); "
        "from pipeline.config import load_config; "
        "from pipeline.features import build_features; "
        f"build_features(load_config({str(tiny_config)!r})); "
        "assert 'torch' not in sys.modules, 'torch imported on a cache hit'"
    )
    result = run_cli("-c", code, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "cache hit" in result.stderr


@pytest.mark.parametrize(
    "override",
    [
        "encoder.pooling=cls",
        "encoder.layer=1",
        "encoder.max_length=16",
        "encoder.precision=bf16",
        "data.limit=30",
    ],
)
def test_any_input_that_changes_the_numbers_changes_the_folder(tiny_config, workdir, override):
    base = build_features(load_config(tiny_config), progress=False)
    other = build_features(load_config(tiny_config, [override]), progress=False)
    assert other != base


def test_changed_data_changes_the_folder(tiny_config, tiny_data, workdir):
    base = build_features(load_config(tiny_config), progress=False)
    dev = tiny_data / "dev.tsv"
    dev.write_text(dev.read_text().replace("\t1\n", "\t0\n", 1))
    assert build_features(load_config(tiny_config), progress=False) != base


def test_unchanged_stamps_find_the_features_without_reading_or_hashing(stamped, monkeypatch):
    config, folder = stamped
    forbid(monkeypatch, splits, "load_splits")
    forbid(monkeypatch, feature_cache, "weights_hash", "sha256_file")
    assert build_features(config, progress=False) == folder
    assert load_features(config)[0] == folder


def test_a_file_touched_but_unchanged_is_hashed_once_and_still_a_cache_hit(
    stamped, tiny_data, monkeypatch
):
    config, folder = stamped
    age(tiny_data / "train.tsv", seconds=50)  # the same bytes, another stamp
    forbid(monkeypatch, encoder, "load_encoder")
    assert load_features(config)[0] == folder  # hashed: the same data, so its stamp is updated
    forbid(monkeypatch, splits, "load_splits")
    assert build_features(config, progress=False) == folder


def test_changed_data_behind_an_old_stamp_is_caught(stamped, tiny_data):
    config, folder = stamped
    dev = tiny_data / "dev.tsv"
    size = dev.stat().st_size
    dev.write_text(dev.read_text().replace("\t1\n", "\t0\n", 1))  # same size, new bytes
    assert dev.stat().st_size == size
    age(dev, seconds=50)
    with pytest.raises(PipelineError, match="no features"):
        load_features(config)  # what train and evaluate call
    assert build_features(config, progress=False) != folder


def test_changed_weights_are_caught(tiny_config, tiny_data, tiny_encoder, tmp_path, workdir):
    copy = shutil.copytree(tiny_encoder, tmp_path / "copy")
    config = load_config(tiny_config, [f"encoder.name={copy}"])
    folder = build_features(config, progress=False)
    age(*tiny_data.iterdir(), *weight_files(copy), *folder.glob("*.npy"))
    assert build_features(config, progress=False) == folder  # stamps recorded
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    age(weights, seconds=50)
    with pytest.raises(PipelineError, match="no features"):
        load_features(config)
    assert build_features(config, progress=False) != folder


def test_hub_data_has_no_stamps_so_it_is_hashed_every_time(stamped, tiny_config):
    config, folder = stamped
    current = feature_cache.input_stamps(config)
    assert current["data"] and current["weights"]
    request = feature_cache.request(config)
    assert feature_cache.find(folder.parent, request, current) == folder
    assert feature_cache.find(folder.parent, request, {**current, "data": None}) is None
    hub_data = load_config(tiny_config, ["data.dir=null"])
    assert feature_cache.input_stamps(hub_data) == {"data": None, "weights": None}


def test_damaged_cache_is_detected_and_rebuilt(tiny_config, workdir):
    config = load_config(tiny_config)
    folder = build_features(config, progress=False)
    good = np.load(folder / "train.npy")
    with open(folder / "train.npy", "r+b") as handle:  # flip bytes inside the array
        handle.seek(-8, 2)
        handle.write(b"\x00" * 8)
    with pytest.raises(PipelineError, match="no features"):
        load_features(config)
    assert build_features(config, progress=False) == folder
    np.testing.assert_array_equal(np.load(folder / "train.npy"), good)


def test_train_before_features_is_a_clear_error(tiny_config, workdir):
    with pytest.raises(PipelineError, match="run `make features`"):
        load_features(load_config(tiny_config))


@pytest.mark.parametrize(("long_texts", "truncated"), [("truncate", 1), ("chunk", 0)])
def test_very_long_sentences_are_read_as_set_and_counted(
    tiny_config, tiny_data, workdir, long_texts, truncated
):
    with open(tiny_data / "train.tsv", "a", encoding="utf-8") as handle:
        handle.write("great " * 20_000 + "\t1\n")
    config = load_config(tiny_config, [f"encoder.long_texts={long_texts}"])
    folder = build_features(config, progress=False)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["splits"]["train"]["truncated"] == truncated
    assert meta["splits"]["train"]["n"] == 41
    assert np.isfinite(load_arrays(folder, "train")[0]).all()


def test_a_large_file_on_disk_in_windows_gives_the_same_arrays(tiny_config, workdir, monkeypatch):
    from pipeline.data import splits, tables

    config = load_config(tiny_config)
    whole = build_features(config, progress=False)
    monkeypatch.setattr(tables, "CHUNK_ROWS", 8)  # the train file is "large": texts on disk
    monkeypatch.setattr(batching, "WINDOW", 16)  # and is encoded in three windows
    assert type(splits.load_splits(config.data)["train"].texts).__name__ == "SpooledTexts"
    windowed = build_features(config, root=workdir / "windowed", progress=False)
    assert windowed.name == whole.name  # the same data fingerprint
    for role in ("train", "eval"):
        np.testing.assert_allclose(
            load_arrays(windowed, role)[0], load_arrays(whole, role)[0], atol=1e-6
        )


def test_resume_in_a_later_window_gives_the_same_vectors(tiny_encoder, monkeypatch):
    from conftest import NEGATIVE, POSITIVE

    from pipeline.config import EncoderConfig

    monkeypatch.setattr(batching, "WINDOW", 16)
    loaded = encoder.load_encoder(EncoderConfig(name=str(tiny_encoder), batch_tokens=24))
    texts = [" ".join((POSITIVE + NEGATIVE)[i % 20 : i % 20 + 1 + i % 4]) for i in range(40)]
    calls = []
    full, _ = batching.embed(loaded, texts, progress=False, on_batch=lambda *c: calls.append(c))
    [first_window_end] = [d for d, planned in calls if d == planned][:1]
    assert [d for d, _ in calls] == list(range(1, len(calls) + 1))
    assert calls[-1][0] == calls[-1][1]

    class Killed(Exception):
        pass

    def kill_after(done, _planned):
        if done == first_window_end + 2:
            raise Killed

    out = np.zeros_like(full)
    with pytest.raises(Killed):
        batching.embed(loaded, texts, out=out, progress=False, on_batch=kill_after)
    resumed = []
    batching.embed(
        loaded, texts, out=out, progress=False, skip_batches=first_window_end + 2,
        on_batch=lambda *c: resumed.append(c),
    )  # fmt: skip
    np.testing.assert_array_equal(out, full)
    assert resumed == calls[first_window_end + 2 :]
