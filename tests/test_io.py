"""Artifacts appear whole or not at all, and damaged or undecodable files are clear errors."""

import hashlib

import pytest

from pipeline import PipelineError
from pipeline.io import atomic_path, read_json, sha256_file, write_json, write_text


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "meta.json"
    write_json(path, {"version": 1})
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half of a new fi")
        raise RuntimeError("killed mid-write")
    assert read_json(path) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]


def test_a_write_that_succeeds_replaces_the_file_and_creates_its_folder(tmp_path):
    path = tmp_path / "new" / "folder" / "report.md"
    write_text(path, "first")
    write_text(path, "second")
    assert path.read_text() == "second"
    assert [p.name for p in path.parent.iterdir()] == ["report.md"]


def test_missing_and_damaged_json_are_clear_errors(tmp_path):
    with pytest.raises(PipelineError, match="missing file"):
        read_json(tmp_path / "nothing.json")
    (tmp_path / "cut.json").write_text('{"complete": tr')
    with pytest.raises(PipelineError, match=r"is damaged.*rerun the stage"):
        read_json(tmp_path / "cut.json")


def test_sha256_matches_hashlib_across_blocks(tmp_path):
    data = bytes(range(256)) * 5000  # 1.2 MiB: more than one 1 MiB block
    (tmp_path / "blob").write_bytes(data)
    assert sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()
