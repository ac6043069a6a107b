"""Stage 1, features: SST-2 splits -> frozen-encoder vectors cached under data/features/.

Each feature folder is named by a fingerprint of everything that changes the numbers and found
again by what its meta.json records (`pipeline.feature_cache`). It holds one float32
``<split>.npy`` (and ``<split>_labels.npy``) per split, and a ``meta.json`` written last. A folder
is built under a temporary name and renamed into place, so it is either complete or absent.

    python -m pipeline.features --config configs/sst2-minilm.yaml --data ../shared/data/sst2-glue
"""

from __future__ import annotations

import logging
import mmap
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline import PipelineError, cli
from pipeline.config import Config, to_dict
from pipeline.feature_cache import (
    FEATURES_ROOT,
    adopt,
    features_dir,
    find,
    fingerprint_inputs,
    input_stamps,
    request,
)
from pipeline.io import read_json, sha256_file, write_json

if TYPE_CHECKING:
    from pipeline.data.splits import Split
    from pipeline.encoding.encoder import Encoder

log = logging.getLogger(__name__)

PROGRESS_FILE = "progress.json"
CHECKPOINT_SECONDS = 1.0


def build_features(
    config: Config,
    root: Path = FEATURES_ROOT,
    progress: bool = True,
    splits: dict[str, Split] | None = None,
) -> Path:
    """Compute (or find in the cache) the features for `config`; return their folder.

    Runs on the same features wait for each other (a file lock), so the cache is built once. The
    encoder is loaded before anything is written, so a bad encoder setting leaves no trace.
    `splits` saves reading the data again when the caller has it.
    """
    wanted, current = request(config), input_stamps(config)  # stamps before any hashing
    folder = find(root, wanted, current)
    if folder is None:
        from pipeline.data.splits import load_splits

        splits = splits or load_splits(config.data)
        inputs = fingerprint_inputs(config, splits)
        folder = features_dir(inputs, root)
        if not adopt(folder, wanted, current):
            from pipeline.encoding.encoder import load_encoder  # torch only when needed

            encoder = load_encoder(config.encoder)
            with _lock(folder):
                if not adopt(folder, wanted, current):  # nobody built it while we waited
                    recorded = {"request": wanted, "stamps": {"inputs": current, "arrays": None}}
                    _extract(encoder, splits, inputs, folder, progress, recorded)
                    return folder
    log.info("features: cache hit, %s", folder)
    return folder


def _extract(
    encoder: Encoder,
    splits: dict[str, Split],
    inputs: dict[str, Any],
    folder: Path,
    progress: bool,
    recorded: dict[str, Any],
) -> None:
    """Encode every split into `<folder>.partial`, resuming from its progress.json, then rename.

    `recorded` (the request and stamps) goes into meta.json as it is.
    """
    from pipeline.encoding.batching import MAX_PADDING, SMALL_BATCH_TOKENS, WINDOW, embed

    run_window = None
    if encoder.config.runner == "ray":  # the same batches, run by a Ray Data actor pool
        from pipeline.scale.ray_engine import run_window

    config = encoder.config
    if folder.exists():
        log.warning("features: %s is incomplete or damaged; rebuilding it", folder)
        shutil.rmtree(folder)
    partial = folder.with_name(folder.name + ".partial")
    plan = [config.batch_tokens, MAX_PADDING, SMALL_BATCH_TOKENS, WINDOW, encoder.packed]
    state = {"inputs": inputs, "batches": plan, "done": {}}
    previous = _read_progress(partial)
    if previous and {**previous, "done": {}} == state:
        state = previous
    else:
        shutil.rmtree(partial, ignore_errors=True)
    started = time.perf_counter()
    log.info("features: %s on %s, %s pooling", config.name, encoder.device, config.pooling)
    try:
        partial.mkdir(parents=True, exist_ok=True)
        split_meta = {}
        for role, split in splits.items():
            path = partial / f"{role}.npy"
            done = state["done"].get(role, 0) if path.is_file() else 0
            if done:
                log.info("features: %s: resuming after batch %d", role, done)
            out = np.lib.format.open_memmap(
                path, mode="r+" if done else "w+", dtype=np.float32, shape=(len(split), encoder.dim)
            )
            _, truncated = embed(
                encoder,
                split.texts,
                out=out,
                progress=progress,
                skip_batches=done,
                on_batch=_checkpoint(partial, state, role, out),
                run_window=run_window,
            )
            out.flush()
            del out
            if truncated:
                cut = (role, truncated, len(split), config.max_length)
                log.info("features: %s: %d of %d sentences truncated to %d tokens", *cut)
            split_meta[role] = _split_meta(partial, role, split, truncated)
        seconds = round(time.perf_counter() - started, 2)
        write_json(
            partial / "meta.json",
            {
                "complete": True,
                "fingerprint": folder.name,
                "inputs": inputs,
                "encoder": to_dict(config),
                "dim": encoder.dim,
                "labels": splits["train"].names,
                "device": str(encoder.device),
                "splits": split_meta,
                "seconds": seconds,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "versions": {p: version(p) for p in ("torch", "transformers", "numpy")},
                **recorded,
            },
        )
        (partial / PROGRESS_FILE).unlink(missing_ok=True)
        partial.rename(folder)
    except OSError as err:
        raise PipelineError(f"cannot write features to {partial}: {err.strerror or err}") from None
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"interrupted; run features again to resume from {partial}"
        ) from None
    log.info("features: wrote %s in %.1f s", folder, seconds)


def _checkpoint(
    partial: Path, state: dict[str, Any], role: str, out: np.memmap
) -> Callable[[int, int], None]:
    """An `on_batch` callback that records progress at most once a second and at the end.

    The arrays are memory-mapped, so what a batch wrote is in the file before progress.json says
    so; a killed run loses at most the last second of work. Each checkpoint also flushes the
    written pages and drops them from this process's memory, so memory stays flat however many
    sentences there are.
    """
    last = time.monotonic()

    def record(done: int, total: int) -> None:
        nonlocal last
        if done == total or time.monotonic() - last >= CHECKPOINT_SECONDS:
            out.flush()
            out.base.madvise(mmap.MADV_DONTNEED)
            state["done"][role] = done
            write_json(partial / PROGRESS_FILE, state)
            last = time.monotonic()

    return record


def _read_progress(partial: Path) -> dict[str, Any] | None:
    try:
        return read_json(partial / PROGRESS_FILE)
    except PipelineError:
        return None


@contextmanager
def _lock(folder: Path) -> Iterator[None]:
    """Hold `<folder>.lock`; say so when another run holds it and we wait."""
    from filelock import FileLock, Timeout

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PipelineError(f"cannot create {folder.parent}: {err.strerror or err}") from None
    lock = FileLock(f"{folder}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("features: another run is building %s; waiting for it", folder)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _split_meta(partial: Path, role: str, split: Split, truncated: int) -> dict[str, Any]:
    arrays = {role: _array_meta(partial / f"{role}.npy")}
    if split.labels is not None:
        np.save(partial / f"{role}_labels.npy", split.labels)
        arrays[f"{role}_labels"] = _array_meta(partial / f"{role}_labels.npy")
    return {
        "n": len(split),
        "source": split.shown,
        "origin": {  # for code: the file (or hub split), which rows, how they were chosen
            "file": split.source,
            "rows": None if split.rows is None else split.rows.tolist(),
            "chosen": split.chosen,
        },
        "truncated": truncated,
        "labeled": split.labels is not None,
        "arrays": arrays,
    }


def load_features(
    config: Config, root: Path = FEATURES_ROOT, splits: dict[str, Split] | None = None
) -> tuple[Path, dict[str, Any]]:
    """The complete, verified feature folder for `config` and its meta, or a clear error.

    Found by the stamps recorded in meta.json; `splits` saves reading the data when they changed.
    """
    wanted, current = request(config), input_stamps(config)
    folder = find(root, wanted, current)
    if folder is None:
        from pipeline.data.splits import load_splits

        folder = features_dir(fingerprint_inputs(config, splits or load_splits(config.data)), root)
        if not adopt(folder, wanted, current):
            raise PipelineError(
                f"no features for run {config.run!r} (expected {folder}); run `make features` "
                "with the same CONFIG/DATA/SET first"
            )
    return folder, read_json(folder / "meta.json")


def load_arrays(folder: Path, role: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Features and labels (None if unlabeled) of one split from a feature folder."""
    labels = folder / f"{role}_labels.npy"
    return np.load(folder / f"{role}.npy"), np.load(labels) if labels.exists() else None


def _array_meta(path: Path) -> dict[str, Any]:
    array = np.load(path, mmap_mode="r")
    return {"shape": list(array.shape), "dtype": str(array.dtype), "sha256": sha256_file(path)}


def main() -> None:
    """Command line: build the features for a config."""
    parser = cli.stage_parser(__doc__)
    args = parser.parse_args()
    build_features(cli.config_from_args(args))


if __name__ == "__main__":
    cli.run(main)
