"""The version guard of the fast paths that use transformers internals and private torch ops."""

import pytest

from pipeline.fast.versions import SUPPORTED, allowed, fast_paths_off, in_range, installed


@pytest.mark.parametrize(
    ("package", "found", "ok"),
    [
        ("torch", "2.13.0+cpu", True),
        ("torch", "2.13.2", True),
        ("torch", "2.12.1", False),
        ("torch", "2.14.0", False),
        ("torch", "2.14.0.dev20261201", False),  # a nightly of the next version is not verified
        ("transformers", "5.25.0", True),
        ("transformers", "5.24.1", False),
        ("transformers", "6.0.0", False),
        ("transformers", "not a version", False),
        ("torchao", "0.18.0", True),
        ("torchao", "0.19.0", False),
    ],
)
def test_in_range(package, found, ok):
    assert in_range(found, package) is ok


def test_other_versions_turn_the_fast_paths_off_with_one_warning(caplog):
    versions = (("torch", "2.12.0"), ("transformers", "4.57.1"))
    assert fast_paths_off(versions) == {"packing", "prepack"}
    assert fast_paths_off(versions) == {"packing", "prepack"}
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "transformers>=5.25,<6" in warnings[0].message and "torch 2.12.0" in warnings[0].message
    assert fast_paths_off((("torch", "2.13.0"), ("transformers", "4.57.1"))) == {"packing"}


def test_the_installed_libraries_are_the_verified_ones():
    """Fails after an upgrade: run tests/test_fast_*.py there, then move SUPPORTED's bounds."""
    for package in SUPPORTED:
        assert in_range(installed(package), package), (package, installed(package))
    assert allowed("packing") and allowed("prepack")
