"""The splits of a run, from the Hugging Face hub or a local folder, with one set of class names.

Files are read by `pipeline.data.reader` and checked by `pipeline.data.tables`; here the splits a
protocol needs are chosen, their labels mapped to class ids 0..K-1, and the data fingerprinted by a
content hash. A test split (``data.test_split``) is optional: without its file or hub split there
is none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import PipelineError
from pipeline.config import DataConfig
from pipeline.data.reader import Chunk, pick_columns
from pipeline.data.tables import (
    BINARY_NAMES,
    Split,
    Table,
    find_split_file,
    read_table,
    table_from_chunks,
)
from pipeline.hub import OFFLINE_HINT, hub_offline

log = logging.getLogger(__name__)

CLASS_ID = re.compile(r"0|[1-9][0-9]*")
HASH_CHUNK = 8192


def load_splits(cfg: DataConfig) -> dict[str, Split]:
    """The splits a run needs: ``train``, ``eval`` (protocol split or holdout), optional ``test``.

    Labels become class ids 0..K-1 with the same names in every split: `cfg.labels` when given,
    else the hub's class names or negative/positive for integer ids, else the sorted label names.
    """
    wanted = {"train": cfg.train_split}
    if cfg.protocol in ("split", "mteb"):
        wanted["eval"] = cfg.eval_split
    if cfg.test_split:
        wanted["test"] = cfg.test_split
    tables, hub_names = _from_hub(cfg, wanted) if not cfg.dir else (_local(cfg, wanted), None)
    names, ids_allowed = class_names(cfg, tables, hub_names)
    splits = {role: table.encode(names, ids_allowed) for role, table in tables.items()}
    if cfg.limit is not None:
        train = splits["train"]
        splits["train"] = train.subset(np.arange(min(cfg.limit, len(train))), f"first {cfg.limit}")
    present = np.unique(splits["train"].labels)
    if len(present) < 2:
        raise PipelineError(
            f"{splits['train'].shown}: every training sentence has the label "
            f"{names[present[0]]!r}; a classifier needs at least two classes"
        )
    if cfg.protocol == "holdout":
        splits["train"], splits["eval"] = _stratified_holdout(
            splits["train"], cfg.holdout, cfg.seed
        )
    return splits


def class_names(
    cfg: DataConfig, tables: dict[str, Table], hub_names: list[str] | None = None
) -> tuple[list[str], bool]:
    """The class names in id order, and whether files may give ids instead of names."""
    if cfg.labels:
        return list(cfg.labels), True
    labeled = [t.values for t in tables.values() if t.values]
    first = labeled[0][0] if labeled else "0"
    if CLASS_ID.fullmatch(first):  # integer ids: names from the hub, else the defaults
        k = max((int(v) for values in labeled for v in values if CLASS_ID.fullmatch(v)), default=1)
        k += 1
        if hub_names and len(hub_names) >= k:
            return list(hub_names), True
        return (list(BINARY_NAMES) if k <= 2 else [str(i) for i in range(k)]), True
    names = sorted({v for values in labeled for v in values if not CLASS_ID.fullmatch(v)})
    log.info("labels: %s", ", ".join(f"{i} = {name}" for i, name in enumerate(names)))
    return names, False


def content_hash(splits: dict[str, Split]) -> str:
    """SHA-256 over every split's texts, labels and class names, in order.

    It hashes the bytes of ``json.dumps([role, texts, labels, names])`` per split, produced a
    chunk of texts at a time so that no copy of all the texts is made.
    """
    digest = hashlib.sha256()
    for role in sorted(splits):
        split = splits[role]
        digest.update(f"[{json.dumps(role)}, ".encode())
        _hash_list(digest, split.texts)
        digest.update(b", ")
        if split.labels is None:
            digest.update(b"null")
        else:
            _hash_list(digest, split.labels)
        digest.update(f", {json.dumps(split.names)}]".encode())
    return digest.hexdigest()


def _hash_list(digest: Any, values: Sequence[str] | np.ndarray) -> None:
    """Feed `digest` the bytes of ``json.dumps(list(values))``, a chunk at a time."""
    digest.update(b"[")
    for start in range(0, len(values), HASH_CHUNK):
        chunk = values[start : start + HASH_CHUNK]
        chunk = chunk.tolist() if isinstance(chunk, np.ndarray) else chunk
        digest.update(f"{', ' if start else ''}{json.dumps(chunk)[1:-1]}".encode())
    digest.update(b"]")


def _local(cfg: DataConfig, wanted: dict[str, str]) -> dict[str, Table]:
    """Read the wanted splits from `cfg.dir`; a missing test file just means no test split."""
    tables = {}
    for role, name in wanted.items():
        path = find_split_file(cfg.dir, name, required=role == "train")
        if path is None and role == "eval":
            raise PipelineError(
                f"no {name} (or dev) file in {cfg.dir}; add one, or score by cross-validation on "
                'train alone with SET="data.protocol=kfold"'
            )
        if path is None:
            log.debug("data: no %s file in %s, so no test split", name, cfg.dir)
        else:
            tables[role] = read_table(path, role, cfg)
    return tables


def read_split(path: str | Path, role: str = "train", cfg: DataConfig | None = None) -> Split:
    """Read and validate one local file on its own; the ``test`` role may lack labels."""
    cfg = cfg or DataConfig()
    table = read_table(Path(path), role, cfg)
    return table.encode(*class_names(cfg, {role: table}))


def _from_hub(cfg: DataConfig, wanted: dict[str, str]) -> tuple[dict[str, Table], list[str] | None]:
    """The `wanted` splits via ``datasets.load_dataset`` and the label's class names if it has any.

    Fails fast and clearly offline.
    """
    spec = f"{cfg.dataset}/{cfg.subset}" if cfg.subset else cfg.dataset
    offline = hub_offline()
    try:
        import datasets
    except ImportError:
        raise PipelineError(
            "loading data from the hub needs the `datasets` package (pip install datasets); "
            "or point at local files with DATA=DIR"
        ) from None
    try:
        dataset = datasets.load_dataset(cfg.dataset, cfg.subset)
    except Exception as err:  # datasets raises many kinds; all mean "cannot get it"
        reason = OFFLINE_HINT if offline else f"{type(err).__name__}: {err}"
        raise PipelineError(
            f"cannot load dataset {spec!r} from the Hugging Face hub. {reason} Point at local "
            "files instead: `make features DATA=path/to/sst2` (a folder with train.tsv and "
            "dev.tsv, header 'sentence<TAB>label' or none), or set data.dir in the config."
        ) from None
    tables = {}
    for role, name in wanted.items():
        if name not in dataset and role == "test":
            log.debug("data: dataset %r has no %s split, so no test split", spec, name)
        elif name not in dataset:
            raise PipelineError(
                f"dataset {spec!r} has no split {name!r} (has: {', '.join(dataset)})"
            )
        else:
            tables[role] = _hub_table(dataset[name], f"hub:{spec}:{name}", role, cfg)
    feature = dataset[wanted["train"]].features.get(cfg.label_column)
    return tables, getattr(feature, "names", None)


def _hub_table(split: Any, source: str, role: str, cfg: DataConfig) -> Table:
    """One hub split (a ``datasets.Dataset``) as a checked `Table`, its rows numbered from 1."""
    text, label = pick_columns(
        source, split.column_names, cfg.text_column, cfg.label_column, role != "test"
    )
    values = split.select_columns([text] + ([label] if label else []))[:]  # lists of values
    rows = list(range(1, len(split) + 1))
    chunk = Chunk(0, 0, values[text], None, values[label] if label else None, rows)
    return table_from_chunks([chunk], Path(source), role, cfg)


def _stratified_holdout(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Split into (rest, held out) with class proportions kept, reproducibly."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(split))
    try:
        keep, held = train_test_split(
            index, test_size=fraction, random_state=seed, stratify=split.labels
        )
    except ValueError as err:
        raise PipelineError(f"cannot hold out {fraction:.0%} of {split.shown}: {err}") from None
    return (
        split.subset(np.sort(keep), "train part"),
        split.subset(np.sort(held), f"held out {fraction:.0%}, seed {seed}"),
    )
