"""The library versions the fast paths were written against, in one place, and the check that
turns packing and prepacking off elsewhere (they use transformers internals and private torch
ops, which change without notice). Raise a bound only after tests/test_fast_*.py pass there."""

from __future__ import annotations

import functools
import logging
from importlib.metadata import PackageNotFoundError, version

from packaging.version import InvalidVersion, Version

log = logging.getLogger(__name__)

# package: (lowest version verified, first version not verified)
SUPPORTED = {
    # packing: AttentionInterface, sdpa_attention_forward, masking_utils, MPNet's internals
    "transformers": ("5.25", "6"),
    # prepack: torch.ops.mkldnn._reorder_linear_weight and _linear_pointwise
    "torch": ("2.13", "2.14"),
    # int8: torchao.prototype.smoothquant and Int8DynamicActivationInt8WeightConfig
    "torchao": ("0.18", "0.19"),
}
NEEDS = {"packing": "transformers", "prepack": "torch"}  # the fast paths with a plain fallback


def in_range(found: str, package: str) -> bool:
    """Whether version `found` of `package` is one its fast path was written against (a
    pre-release of the first unverified version is not)."""
    low, high = (Version(bound).release for bound in SUPPORTED[package])
    try:
        return low <= Version(found).release < high
    except InvalidVersion:
        return False


def range_text(package: str) -> str:
    """The supported range as a pip requirement, e.g. "torch>=2.13,<2.14"."""
    low, high = SUPPORTED[package]
    return f"{package}>={low},<{high}"


@functools.cache
def fast_paths_off(versions: tuple[tuple[str, str], ...]) -> frozenset[str]:
    """The fast paths (`NEEDS`) that these (package, version) pairs turn off; logs one warning
    per distinct set of versions, so once per process for the installed ones."""
    found = dict(versions)
    off = {path: pkg for path, pkg in NEEDS.items() if not in_range(found.get(pkg, ""), pkg)}
    if off:
        log.warning(
            "fast paths off (%s): written against %s, found %s; running padded batches with "
            "torch's linear layers instead (the same vectors, slower)",
            ", ".join(sorted(off)),
            ", ".join(range_text(pkg) for pkg in off.values()),
            ", ".join(f"{pkg} {found.get(pkg, 'none')}" for pkg in off.values()),
        )
    return frozenset(off)


@functools.cache
def installed(package: str) -> str | None:
    """The installed version of `package`, or None."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def allowed(path: str) -> bool:
    """Whether fast path `path` ("packing" or "prepack") runs with the installed libraries."""
    versions = tuple((pkg, installed(pkg) or "") for pkg in sorted(set(NEEDS.values())))
    return path not in fast_paths_off(versions)
