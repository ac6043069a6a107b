"""SST-2 splits from the Hugging Face hub or local files, validated, with a content hash.

Local files: ``train``/``dev`` (or ``validation``)/``test`` with the suffix .tsv, .csv, .jsonl or
.parquet, holding a ``sentence`` (or ``text``) column and, except for test, a ``label`` of 0/1.
TSV files may be GLUE-style (header ``sentence\\tlabel``) or headerless ``sentence<TAB>label``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import PipelineError
from pipeline.config import DataConfig
from pipeline.hub import OFFLINE_HINT, hub_offline
from pipeline.io import decode_utf8

log = logging.getLogger(__name__)

SUFFIXES = (".tsv", ".csv", ".jsonl", ".parquet")
TEXT_COLUMNS = ("sentence", "text")
LABEL_NAMES = ("negative", "positive")


@dataclass
class Split:
    """Sentences of one split, their 0/1 labels (None when unlabeled) and where they came from."""

    texts: list[str]
    labels: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: np.ndarray, source: str) -> Split:
        """The rows at `index`, in that order."""
        labels = None if self.labels is None else self.labels[index]
        return Split([self.texts[i] for i in index], labels, source)


def load_splits(cfg: DataConfig) -> dict[str, Split]:
    """The splits a run needs: ``train``, ``eval`` and, if configured, an unlabeled ``test``."""
    wanted = {"train": cfg.train_split}
    if cfg.holdout is None:
        wanted["eval"] = cfg.eval_split
    if cfg.test_split:
        wanted["test"] = cfg.test_split
    if cfg.dir:
        splits = {
            role: read_split(find_split_file(cfg.dir, name), role, cfg.empty)
            for role, name in wanted.items()
        }
    else:
        splits = _from_hub(cfg, wanted)
    if cfg.limit is not None:
        train = splits["train"]
        splits["train"] = train.subset(np.arange(min(cfg.limit, len(train))), train.source)
    if cfg.holdout is not None:
        splits["train"], splits["eval"] = _stratified_holdout(
            splits["train"], cfg.holdout, cfg.seed
        )
    return splits


def content_hash(splits: dict[str, Split]) -> str:
    """SHA-256 over every split's texts and labels, in order."""
    digest = hashlib.sha256()
    for role in sorted(splits):
        split = splits[role]
        labels = None if split.labels is None else split.labels.tolist()
        digest.update(json.dumps([role, split.texts, labels]).encode())
    return digest.hexdigest()


def find_split_file(folder: str | Path, split: str) -> Path:
    """The file for `split` in `folder` (``validation`` may also be called ``dev``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"data folder not found: {folder}")
    stems = [split] + (
        ["dev"] if split == "validation" else ["validation"] if split == "dev" else []
    )
    for stem in stems:
        for suffix in SUFFIXES:
            if (folder / f"{stem}{suffix}").is_file():
                return folder / f"{stem}{suffix}"
    names = ", ".join(f"{stems[0]}{s}" for s in SUFFIXES)
    raise PipelineError(f"no file for split {split!r} in {folder} (looked for {names})")


def read_split(path: str | Path, role: str = "train", empty: str = "error") -> Split:
    """Read and validate one local file; the ``test`` role may lack labels."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"data file not found: {path}")
    if path.suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as err:
            raise PipelineError(f"{path}: cannot read Parquet: {err}") from None
        return _validate(frame, path, role, None, empty)
    text = decode_utf8(path.read_bytes(), path)
    if not text.strip():
        raise PipelineError(f"{path}: the file is empty")
    try:
        if path.suffix == ".jsonl":
            frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
            return _validate(frame, path, role, 1, empty)
        sep = "," if path.suffix == ".csv" else "\t"
        first = text.splitlines()[0].split(sep)
        has_header = any(c.strip() in (*TEXT_COLUMNS, "label") for c in first)
        names = None if has_header else ["sentence", "label"][: len(first)]
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=0 if has_header else None,
            names=names,
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE,
            skip_blank_lines=True,
        )
    except (ValueError, pd.errors.ParserError) as err:
        raise PipelineError(f"{path}: cannot parse: {err}") from None
    return _validate(frame, path, role, 2 if has_header else 1, empty)


def _validate(
    frame: pd.DataFrame, path: Path, role: str, first_line: int | None, empty: str
) -> Split:
    """Check columns, sentences and labels; errors name the file and line (or row).

    Empty sentences are an error, or dropped and counted when `empty` is "drop". Duplicate rows
    and sentences with both labels are reported, not removed.
    """

    def where(row: int) -> str:
        return f"{path}, line {row + first_line}" if first_line else f"{path}, row {row + 1}"

    frame.columns = [str(c).strip() for c in frame.columns]
    text_col = next((c for c in TEXT_COLUMNS if c in frame.columns), None)
    if text_col is None:
        raise PipelineError(
            f"{path}: no 'sentence' column (columns: {', '.join(frame.columns)}); expected a "
            "header 'sentence<TAB>label' or headerless 'sentence<TAB>label' lines"
        )
    if frame.empty:
        raise PipelineError(f"{path}: no sentences (only a header?)")
    if role != "test" and "label" not in frame.columns:
        raise PipelineError(f"{path}: no 'label' column (columns: {', '.join(frame.columns)})")
    rows, texts = [], []
    for row, value in enumerate(frame[text_col].tolist()):
        if isinstance(value, str) and value.strip():
            rows.append(row)
            texts.append(value.strip())
        elif empty == "error":
            raise PipelineError(
                f"{where(row)}: empty sentence (set data.empty=drop to skip such rows)"
            )
    if len(rows) < len(frame):
        log.warning("%s: dropped %d empty sentences", path, len(frame) - len(rows))
    if not rows:
        raise PipelineError(f"{path}: no sentences left")
    if role == "test":
        return Split(texts, None, str(path))
    labels = np.empty(len(rows), dtype=np.int64)
    values = frame["label"].tolist()
    for i, row in enumerate(rows):
        label = _parse_label(values[row])
        if label is None:
            raise PipelineError(f"{where(row)}: label {values[row]!r} is not 0 or 1")
        labels[i] = label
    _report_duplicates(path, texts, labels)
    return Split(texts, labels, str(path))


def _report_duplicates(path: Path, texts: list[str], labels: np.ndarray) -> None:
    """Log repeated (sentence, label) rows and sentences that carry both labels."""
    pairs = set(zip(texts, labels.tolist(), strict=True))
    repeated = len(texts) - len(pairs)
    conflicting = len(pairs) - len({text for text, _ in pairs})
    if repeated or conflicting:
        log.warning(
            "%s: %d duplicate rows, %d sentences with both labels (kept as they are)",
            path,
            repeated,
            conflicting,
        )


def _parse_label(value: object) -> int | None:
    """0 or 1 from an int or its exact text form; None for anything else ('1.0', 'pos', 2)."""
    if isinstance(value, str):
        value = value.strip()
        return int(value) if value in ("0", "1") else None
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and value in (0, 1):
        return int(value)
    return None


def _from_hub(cfg: DataConfig, wanted: dict[str, str]) -> dict[str, Split]:
    """Load `wanted` splits with ``datasets.load_dataset``; fail fast and clearly offline."""
    spec = f"{cfg.dataset}/{cfg.subset}" if cfg.subset else cfg.dataset
    offline = hub_offline()
    try:
        import datasets
    except ImportError:
        raise PipelineError(
            "loading SST-2 from the hub needs the `datasets` package (pip install datasets); "
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
    splits = {}
    for role, name in wanted.items():
        if name not in dataset:
            raise PipelineError(
                f"dataset {spec!r} has no split {name!r} (has: {', '.join(dataset)})"
            )
        frame = dataset[name].to_pandas()
        splits[role] = _validate(frame, Path(f"hub:{spec}:{name}"), role, None, cfg.empty)
    return splits


def _stratified_holdout(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Split into (rest, held out) with class proportions kept, reproducibly."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(split))
    try:
        keep, held = train_test_split(
            index, test_size=fraction, random_state=seed, stratify=split.labels
        )
    except ValueError as err:
        raise PipelineError(f"cannot hold out {fraction:.0%} of {split.source}: {err}") from None
    return (
        split.subset(np.sort(keep), f"{split.source} (train part)"),
        split.subset(np.sort(held), f"{split.source} (held out {fraction:.0%}, seed {seed})"),
    )
