"""A pool: unlabeled texts to pick from, encoded once and cached as a feature split.

Any file the one reader takes (.txt, .tsv, .csv, .jsonl, .parquet) is a pool: its text column
(``data.text_column``, else ``sentence``, else ``text``; a .txt line is a text), labels optional.
Empty texts are dropped and counted, and a text that comes again is kept once, so a text is a
pool row and a row is a text. The vectors are `make features`' own: the pool is the ``train``
split of a config whose data section names the file (`pool_config`), built by `build_features`,
so it is fingerprinted (encoder, weights, pooling, layer, the texts), found again by stamps,
resumed when killed, and never encoded twice, on whichever encoder the config names.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline import PipelineError
from pipeline.config import Config, DataConfig
from pipeline.data.formats import where
from pipeline.data.reader import read_chunks
from pipeline.data.tables import BINARY_NAMES, CHUNK_ROWS, Split, table_from_chunks
from pipeline.features import FEATURES_ROOT, build_features, load_arrays

log = logging.getLogger(__name__)

ROLE = "train"  # the pool's split in its feature folder (features name every folder's first so)


@dataclass
class Pool:
    """The pool's texts (unique, in file order), a vector per text, and its labels if it had
    any (class ids into `names`; kept for simulations, never shown as answers)."""

    texts: list[str]
    x: np.ndarray
    source: str
    labels: np.ndarray | None = None
    names: list[str] | None = None
    folder: Path | None = None  # the feature folder holding the vectors
    _rows: dict[str, int] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.texts)

    def row(self, text: str) -> int:
        """The pool row of `text` (after stripping), or -1 when it is not in the pool."""
        if not self._rows:
            self._rows = {t: i for i, t in enumerate(self.texts)}
        return self._rows.get(text.strip(), -1)

    def rows(self, texts: Sequence[str]) -> np.ndarray:
        """The pool row of each text, -1 for one not in the pool."""
        return np.asarray([self.row(t) for t in texts], dtype=np.int64)


def pool_config(config: Config, path: Path) -> Config:
    """`config` with a data section that names the pool file: its features are the pool's.

    The request recorded in the feature folder names the file, so two pools in one folder never
    share a cache entry; the folder's files are the stamps that let a rerun skip hashing.
    """
    path = path.resolve()
    data = DataConfig(
        dataset="pool",
        subset=str(path),
        dir=str(path.parent),
        train_split=path.name,
        test_split=None,
        text_column=config.data.text_column,
        empty="drop",
    )
    return dataclasses.replace(config, data=data, run=f"pool-{path.stem}")


def read_pool(path: Path, config: Config, with_labels: bool = False) -> Split:
    """The pool file as a split of unique texts; its labels (class ids into config.data.labels,
    else the file's names) only `with_labels` and when it has a label column."""
    path = Path(path)
    cfg = dataclasses.replace(config.data, empty="drop")
    label_column = cfg.label_column if with_labels else None
    chunks = read_chunks(path, CHUNK_ROWS, cfg.text_column, label_column=label_column)
    table = table_from_chunks(chunks, path, "test", cfg)  # "test": the labels may be absent
    names = list(cfg.labels) if cfg.labels else None
    if table.values is not None and names is None:
        from pipeline.data.splits import class_names

        names, _ = class_names(cfg, {"pool": table})
    split = table.encode(names or list(BINARY_NAMES), True)
    first: dict[str, int] = {}
    for i, text in enumerate(split.texts):
        first.setdefault(text, i)
    if len(first) < len(split):
        log.info("pool: %s: %d repeated texts kept once", path, len(split) - len(first))
    split = split.subset(np.fromiter(first.values(), dtype=np.int64), "unique texts")
    if split.labels is not None:
        split.names = names
    return split


def load_pool(
    path: str | Path,
    config: Config,
    root: Path = FEATURES_ROOT,
    progress: bool = True,
    with_labels: bool = False,
) -> Pool:
    """Read the pool file and return it with its vectors, encoding it only when not cached."""
    path = Path(path)
    split = read_pool(path, config, with_labels)
    texts = list(split.texts)
    cached = Split(texts, None, split.source, list(BINARY_NAMES), split.rows, split.chosen)
    folder = build_features(pool_config(config, path), root, progress, splits={ROLE: cached})
    x, _ = load_arrays(folder, ROLE)
    if len(x) != len(texts):
        raise PipelineError(f"{folder} holds {len(x)} vectors for a pool of {len(texts)} texts")
    names = split.names if split.labels is not None else None
    return Pool(texts, x, str(path), split.labels, names, folder)


def pool_from_split(config: Config, role: str = "train", root: Path = FEATURES_ROOT) -> Pool:
    """A data folder's split (its features built or found as `make features` does) as a pool,
    labels included: the pool of the simulation study and the speed benchmark."""
    from pipeline.data.splits import load_splits

    splits = load_splits(config.data)
    folder = build_features(config, root, splits=splits)
    x, y = load_arrays(folder, role)
    split = splits[role]
    texts = list(split.texts)
    first: dict[str, int] = {}
    for i, text in enumerate(texts):
        first.setdefault(text, i)
    keep = np.fromiter(first.values(), dtype=np.int64)
    labels = None if y is None else y[keep]
    return Pool([texts[i] for i in keep], x[keep], split.shown, labels, split.names, folder)


def encode_texts(config: Config, texts: Sequence[str]) -> np.ndarray:
    """Vectors for texts outside the pool (labeled elsewhere), with the config's encoder."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    from pipeline.encoding.batching import embed
    from pipeline.encoding.encoder import load_encoder

    vectors, _ = embed(load_encoder(config.encoder), list(texts))
    return vectors


PENDING, SKIPPED = -1, -2  # a labels file's row without a label yet; a row answered "skip"


@dataclass
class Answers:
    """A labels file as read: each text once (its last answer wins), a class id per text or
    PENDING / SKIPPED, and the class names."""

    texts: list[str]
    labels: np.ndarray
    names: list[str]

    def labeled(self) -> np.ndarray:
        """Which texts carry a class label."""
        return self.labels >= 0


def read_answers(
    path: str | Path, names: list[str] | None, text_column: str | None = None
) -> Answers:
    """Read a labels file (make pick's filled-in CSV, make label's OUT, any labeled data file)
    with the one reader. An empty label is a pending pick, ``skip`` a skipped text; any other
    label is a class name of `names` or its id. Without `names`, the names are the file's
    labels, sorted (integer ids: negative/positive for two classes, else the ids)."""
    path = Path(path)
    answers: dict[str, str] = {}
    lines: dict[str, int] = {}
    for chunk in read_chunks(path, CHUNK_ROWS, text_column, label_column="label"):
        values = chunk.labels or [None] * len(chunk.texts)
        for text, value, line in zip(chunk.texts, values, chunk.lines, strict=True):
            if not isinstance(text, str) or not text.strip():
                continue
            answers[text.strip()] = "" if value is None else str(value).strip()
            lines[text.strip()] = line
    given = [v for v in answers.values() if v and v != "skip"]
    if names is None:
        found = sorted(set(given))
        if all(v.isdigit() for v in found):
            k = max((int(v) for v in found), default=1) + 1
            names = list(BINARY_NAMES) if k <= 2 else [str(i) for i in range(k)]
        else:
            names = found
    index = {name: i for i, name in enumerate(names)} | {str(i): i for i in range(len(names))}
    labels = np.empty(len(answers), dtype=np.int64)
    for i, (text, value) in enumerate(answers.items()):
        if value == "":
            labels[i] = PENDING
        elif value == "skip":
            labels[i] = SKIPPED
        elif value in index:
            labels[i] = index[value]
        else:
            raise PipelineError(
                f"{where(path, lines[text])}: label {value!r} is not one of {', '.join(names)} "
                "(or empty for a pending pick, or skip)"
            )
    return Answers(list(answers), labels, list(names))
