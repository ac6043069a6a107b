"""How a run finds its feature folder without recomputing what the features stage computed.

A folder is named by a fingerprint of everything that changes the numbers (encoder and its
weights, pooling, layer, max_length, precision, the data's content). Its meta.json also records
the request (those settings and the config's data section) and stamps (path, size, mtime_ns) of
the data files, the weight files and the arrays. A run finds its folder by request and stamps; it
reads and hashes the data and weights again only when a stamp changed, and checksums the arrays
again only when theirs did. Hub data has no files to stamp and is hashed every time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import PipelineError
from pipeline.config import Config, to_dict
from pipeline.hub import encoder_dir, stamps, weight_files, weights_hash
from pipeline.io import read_json, sha256_file, write_json

if TYPE_CHECKING:
    from pipeline.data.splits import Split

log = logging.getLogger(__name__)

FEATURES_ROOT = Path("data/features")


def fingerprint_inputs(config: Config, splits: dict[str, Split]) -> dict[str, Any]:
    """Everything that changes the feature numbers, as a JSON-able dict."""
    from pipeline.data.splits import content_hash  # pandas only when the data is read

    enc = config.encoder
    return {
        **_settings(config),
        "weights_sha256": weights_hash(encoder_dir(enc.name, enc.revision)),
        "data_sha256": content_hash(splits),
    }


def features_dir(inputs: dict[str, Any], root: Path = FEATURES_ROOT) -> Path:
    """The cache folder for these inputs: a readable prefix plus a 16-hex fingerprint."""
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(inputs["encoder"]).name)
    layers = (
        "_".join(map(str, inputs["layer"]))
        if isinstance(inputs["layer"], list)
        else inputs["layer"]
    )
    return root / f"{name}-{inputs['pooling']}-L{layers}-{key}"


def request(config: Config) -> dict[str, Any]:
    """What `config` asks of the features, in its JSON form: the settings and the data section
    (its folder made absolute, so that a run from elsewhere asks the same)."""
    data = to_dict(config.data)
    if data["dir"]:
        data["dir"] = str(Path(data["dir"]).resolve())
    return json.loads(json.dumps({**_settings(config), "data": data}))


def input_stamps(config: Config) -> dict[str, Any]:
    """Stamps of the local data folder's files and of the weight files. None for files of which
    one just changed, and both None for hub data (hashed every time, as it always was)."""
    folder = Path(config.data.dir) if config.data.dir else None
    if folder is None or not folder.is_dir():
        return {"data": None, "weights": None}
    enc = config.encoder
    return {
        "data": stamps(sorted(path.resolve() for path in folder.iterdir() if path.is_file())),
        "weights": stamps(weight_files(encoder_dir(enc.name, enc.revision))),
    }


def find(root: Path, wanted: dict[str, Any], current: dict[str, Any]) -> Path | None:
    """The intact folder under `root` whose meta.json records request `wanted` and the
    `current` input stamps, or None."""
    if None in current.values():
        return None
    for meta_path in sorted(root.glob("*/meta.json")):
        if meta_path.parent.suffix == ".partial":  # being renamed into place
            continue
        try:
            meta = read_json(meta_path)
        except PipelineError:
            continue
        if (
            meta.get("request") == wanted
            and (meta.get("stamps") or {}).get("inputs") == current
            and adopt(meta_path.parent, wanted, current)
        ):
            return meta_path.parent
    return None


def intact(folder: Path) -> dict[str, Any] | None:
    """The folder's meta.json when it says complete and every array matches its recorded
    checksum, else None. Pure: the arrays are checksummed only when their stamps changed."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = read_json(meta_path)
        arrays = [
            (folder / f"{name}.npy", info["sha256"])
            for split in meta["splits"].values()
            for name, info in split["arrays"].items()
        ]
    except (PipelineError, KeyError, AttributeError, TypeError):
        return None
    if meta.get("complete") is not True:
        return None
    now = stamps(path for path, _ in arrays)
    changed = now is None or now != (meta.get("stamps") or {}).get("arrays")
    if changed and not all(path.is_file() and sha256_file(path) == sha for path, sha in arrays):
        return None
    return meta


def record_stamps(
    folder: Path, meta: dict[str, Any], wanted: dict[str, Any], current: dict
) -> None:
    """Record request `wanted`, the `current` input stamps and the arrays' stamps in an intact
    folder's meta.json, so the next run finds it by stamps without hashing."""
    arrays = (
        folder / f"{name}.npy" for split in meta["splits"].values() for name in split["arrays"]
    )
    fresh = {"inputs": current, "arrays": stamps(arrays)}
    if meta.get("request") != wanted or meta.get("stamps") != fresh:
        try:
            write_json(folder / "meta.json", {**meta, "request": wanted, "stamps": fresh})
        except PipelineError:  # a read-only cache still works, checked in full each time
            log.debug("features: cannot record stamps in %s", folder / "meta.json")


def adopt(folder: Path, wanted: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether `folder` is intact; if so, record that it serves `wanted` (`record_stamps`)."""
    meta = intact(folder)
    if meta is not None:
        record_stamps(folder, meta, wanted, current)
    return meta is not None


def _settings(config: Config) -> dict[str, Any]:
    """The encoder settings that change the feature numbers."""
    enc = config.encoder
    settings = {
        "encoder": enc.name,
        "revision": enc.revision,
        "pooling": enc.pooling,
        "layer": enc.layer,
        "max_length": enc.max_length,
        "long_texts": enc.long_texts,
        "stride": enc.stride,
        "precision": enc.precision,
    }
    if enc.precision in ("bf16", "int8"):  # how their kernels round changes the numbers too
        from pipeline.encoding.device import pick_device
        from pipeline.fast.recipe import recipe

        settings[enc.precision] = recipe(enc.precision, pick_device(enc.device))
    return settings
