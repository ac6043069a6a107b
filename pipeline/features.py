"""Stage 1, features: SST-2 splits -> frozen-encoder vectors cached under data/features/.

Each feature folder is named by a fingerprint of everything that changes the numbers (encoder and
its weights, pooling, layer, max_length, precision, the data's content), holds one float32
``<split>.npy`` (and ``<split>_labels.npy``) per split, and a ``meta.json`` written last. A folder
is built under a temporary name and renamed into place, so it is either complete or absent.

    python -m pipeline.features --config configs/sst2-minilm.yaml --data ../shared/data/sst2-glue
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import PipelineError, cli
from pipeline.config import Config, to_dict
from pipeline.data import Split, content_hash, load_splits
from pipeline.hub import encoder_dir, weights_hash
from pipeline.io import read_json, sha256_file, write_json

log = logging.getLogger(__name__)

FEATURES_ROOT = Path("data/features")


def fingerprint_inputs(config: Config, splits: dict[str, Split]) -> dict[str, Any]:
    """Everything that changes the feature numbers, as a JSON-able dict."""
    enc = config.encoder
    return {
        "encoder": enc.name,
        "revision": enc.revision,
        "weights_sha256": weights_hash(encoder_dir(enc.name, enc.revision)),
        "pooling": enc.pooling,
        "layer": enc.layer,
        "max_length": enc.max_length,
        "precision": enc.precision,
        "data_sha256": content_hash(splits),
    }


def features_dir(inputs: dict[str, Any], root: Path = FEATURES_ROOT) -> Path:
    """The cache folder for these inputs: a readable prefix plus a 16-hex fingerprint."""
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(inputs["encoder"]).name)
    return root / f"{name}-{inputs['pooling']}-L{inputs['layer']}-{key}"


def build_features(config: Config, root: Path = FEATURES_ROOT, progress: bool = True) -> Path:
    """Compute (or find in the cache) the features for `config`; return their folder."""
    splits = load_splits(config.data)
    inputs = fingerprint_inputs(config, splits)
    folder = features_dir(inputs, root)
    if _is_complete(folder):
        log.info("features: cache hit, %s", folder)
        return folder
    if folder.exists():
        log.warning("features: %s is incomplete or damaged; rebuilding it", folder)
    from pipeline.encoder import embed, load_encoder  # torch is imported only when needed

    started = time.perf_counter()
    encoder = load_encoder(config.encoder)
    log.info(
        "features: %s on %s, %s pooling",
        config.encoder.name,
        encoder.device,
        config.encoder.pooling,
    )
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        split_meta = {}
        for role, split in splits.items():
            path = partial / f"{role}.npy"
            out = np.lib.format.open_memmap(
                path, mode="w+", dtype=np.float32, shape=(len(split), encoder.dim)
            )
            _, truncated = embed(encoder, split.texts, out=out, progress=progress)
            out.flush()
            del out
            if truncated:
                log.info(
                    "features: %s: %d of %d sentences truncated to %d tokens",
                    role,
                    truncated,
                    len(split),
                    config.encoder.max_length,
                )
            split_meta[role] = {
                "n": len(split),
                "source": split.source,
                "truncated": truncated,
                "labeled": split.labels is not None,
                "arrays": {role: _array_meta(path)},
            }
            if split.labels is not None:
                labels_path = partial / f"{role}_labels.npy"
                np.save(labels_path, split.labels)
                split_meta[role]["arrays"][f"{role}_labels"] = _array_meta(labels_path)
        meta = {
            "complete": True,
            "fingerprint": folder.name,
            "inputs": inputs,
            "encoder": to_dict(config.encoder),
            "dim": encoder.dim,
            "device": str(encoder.device),
            "splits": split_meta,
            "seconds": round(time.perf_counter() - started, 2),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": {p: version(p) for p in ("torch", "transformers", "numpy")},
        }
        write_json(partial / "meta.json", meta)
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    except OSError as err:
        raise PipelineError(f"cannot write features to {partial}: {err.strerror or err}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    log.info("features: wrote %s in %.1f s", folder, meta["seconds"])
    return folder


def load_features(config: Config, root: Path = FEATURES_ROOT) -> tuple[Path, dict[str, Any]]:
    """The complete, verified feature folder for `config` and its meta, or a clear error."""
    inputs = fingerprint_inputs(config, load_splits(config.data))
    folder = features_dir(inputs, root)
    if not _is_complete(folder):
        raise PipelineError(
            f"no features for run {config.run!r} (expected {folder}); run `make features` with "
            "the same CONFIG/DATA/SET first"
        )
    return folder, read_json(folder / "meta.json")


def load_arrays(folder: Path, role: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Features and labels (None if unlabeled) of one split from a feature folder."""
    labels = folder / f"{role}_labels.npy"
    return np.load(folder / f"{role}.npy"), np.load(labels) if labels.exists() else None


def _array_meta(path: Path) -> dict[str, Any]:
    array = np.load(path, mmap_mode="r")
    return {"shape": list(array.shape), "dtype": str(array.dtype), "sha256": sha256_file(path)}


def _is_complete(folder: Path) -> bool:
    """True when meta.json says complete and every array matches its recorded checksum."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return False
    try:
        meta = read_json(meta_path)
        arrays = [
            (folder / f"{name}.npy", info)
            for split in meta["splits"].values()
            for name, info in split["arrays"].items()
        ]
    except (PipelineError, KeyError, AttributeError):
        return False
    return meta.get("complete") is True and all(
        path.is_file() and sha256_file(path) == info["sha256"] for path, info in arrays
    )


def main() -> None:
    """Command line: build the features for a config."""
    parser = cli.stage_parser(__doc__)
    args = parser.parse_args()
    build_features(cli.config_from_args(args))


if __name__ == "__main__":
    cli.run(main)
