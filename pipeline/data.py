"""Labeled sentences from the Hugging Face hub or local files, validated, with a content hash.

Local files: ``train``/``dev`` (or ``validation``)/``test`` with the suffix .tsv, .csv, .jsonl or
.parquet, holding a ``sentence`` (or ``text``, or ``data.text_column``) column and, except for an
unlabeled test file, a ``label`` (or ``data.label_column``) column of class ids or class names.
TSV files may be GLUE-style (header ``sentence\\tlabel``) or headerless ``sentence<TAB>label``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass, field
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
BINARY_NAMES = ("negative", "positive")
CLASS_ID = re.compile(r"0|[1-9][0-9]*")


@dataclass
class Split:
    """Sentences of one split, class ids (None: unlabeled), class names, where they came from."""

    texts: list[str]
    labels: np.ndarray | None
    source: str
    names: list[str] = field(default_factory=lambda: list(BINARY_NAMES))

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: np.ndarray, source: str) -> Split:
        """The rows at `index`, in that order."""
        labels = None if self.labels is None else self.labels[index]
        return Split([self.texts[i] for i in index], labels, source, self.names)


@dataclass
class _Table:
    """One file (or hub split) as read: texts, label values as text, where each row came from."""

    texts: list[str]
    values: list[str] | None
    rows: list[int]
    path: Path
    first_line: int | None  # line of the first data row; None: say "row n" (hub, Parquet)

    def where(self, i: int) -> str:
        """Where the i-th kept row came from: "file, line n" or "source, row n"."""
        return _location(self.path, self.first_line, self.rows[i])

    def encode(self, names: list[str], ids_allowed: bool) -> Split:
        """Class ids for the label values: a name from `names`, or (if allowed) its id."""
        if self.values is None:
            return Split(self.texts, None, str(self.path), names)
        index = {name: i for i, name in enumerate(names)}
        if ids_allowed:
            index |= {str(i): i for i in range(len(names))}
        labels = np.empty(len(self.values), dtype=np.int64)
        for i, value in enumerate(self.values):
            if value not in index:
                raise PipelineError(f"{self.where(i)}: label {value!r} is not {_expected(names)}")
            labels[i] = index[value]
        _report_duplicates(self.path, self.texts, labels)
        return Split(self.texts, labels, str(self.path), names)


def load_splits(cfg: DataConfig) -> dict[str, Split]:
    """The splits a run needs: ``train``, ``eval`` (protocol split or holdout), optional ``test``.

    Labels become class ids 0..K-1 with the same names in every split: `cfg.labels` when given,
    else the hub's class names or negative/positive for integer ids, else the sorted label names.
    """
    wanted = {"train": cfg.train_split}
    if cfg.protocol == "split":
        wanted["eval"] = cfg.eval_split
    if cfg.test_split:
        wanted["test"] = cfg.test_split
    tables, hub_names = _from_hub(cfg, wanted) if not cfg.dir else (_local(cfg, wanted), None)
    names, ids_allowed = class_names(cfg, tables, hub_names)
    splits = {role: table.encode(names, ids_allowed) for role, table in tables.items()}
    if cfg.limit is not None:
        train = splits["train"]
        splits["train"] = train.subset(np.arange(min(cfg.limit, len(train))), train.source)
    present = np.unique(splits["train"].labels)
    if len(present) < 2:
        raise PipelineError(
            f"{splits['train'].source}: every training sentence has the label "
            f"{names[present[0]]!r}; a classifier needs at least two classes"
        )
    if cfg.protocol == "holdout":
        splits["train"], splits["eval"] = _stratified_holdout(
            splits["train"], cfg.holdout, cfg.seed
        )
    return splits


def class_names(
    cfg: DataConfig, tables: dict[str, _Table], hub_names: list[str] | None = None
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


def _expected(names: list[str]) -> str:
    if names == [str(i) for i in range(len(names))]:
        return " or ".join(names) if len(names) == 2 else f"a class id 0..{len(names) - 1}"
    if names == list(BINARY_NAMES):
        return "0 or 1 (negative, positive)"
    return f"one of {', '.join(names)} (set data.labels to name the classes)"


def content_hash(splits: dict[str, Split]) -> str:
    """SHA-256 over every split's texts, labels and class names, in order."""
    digest = hashlib.sha256()
    for role in sorted(splits):
        split = splits[role]
        labels = None if split.labels is None else split.labels.tolist()
        digest.update(json.dumps([role, split.texts, labels, split.names]).encode())
    return digest.hexdigest()


def find_split_file(folder: str | Path, split: str, required: bool = True) -> Path | None:
    """The file for `split` in `folder` (``validation`` may also be called ``dev``).

    A missing file is an error, or None when not `required`.
    """
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
    if not required:
        return None
    names = ", ".join(f"{stems[0]}{s}" for s in SUFFIXES)
    raise PipelineError(f"no file for split {split!r} in {folder} (looked for {names})")


def _local(cfg: DataConfig, wanted: dict[str, str]) -> dict[str, _Table]:
    """Read the wanted splits from `cfg.dir`; a missing test file just means no test split."""
    tables = {}
    for role, name in wanted.items():
        path = find_split_file(cfg.dir, name, required=role != "test")
        if path is None:
            log.info("data: no %s file in %s, so no test split", name, cfg.dir)
        else:
            tables[role] = _read_table(path, role, cfg)
    return tables


def read_split(path: str | Path, role: str = "train", cfg: DataConfig | None = None) -> Split:
    """Read and validate one local file on its own; the ``test`` role may lack labels."""
    cfg = cfg or DataConfig()
    table = _read_table(Path(path), role, cfg)
    return table.encode(*class_names(cfg, {role: table}))


def _read_table(path: Path, role: str, cfg: DataConfig) -> _Table:
    """Parse one local file into a `_Table`; errors name the file and line."""
    if not path.is_file():
        raise PipelineError(f"data file not found: {path}")
    if path.suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as err:
            raise PipelineError(f"{path}: cannot read Parquet: {err}") from None
        return _validate(frame, path, role, None, cfg)
    text = decode_utf8(path.read_bytes(), path)
    if not text.strip():
        raise PipelineError(f"{path}: the file is empty")
    try:
        if path.suffix == ".jsonl":
            frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
            return _validate(frame, path, role, 1, cfg)
        sep = "," if path.suffix == ".csv" else "\t"
        first = text.splitlines()[0].split(sep)
        known = (*TEXT_COLUMNS, cfg.text_column, cfg.label_column)
        has_header = any(c.strip() in known for c in first)
        names = None if has_header else ["sentence", cfg.label_column][: len(first)]
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
    return _validate(frame, path, role, 2 if has_header else 1, cfg)


def _validate(
    frame: pd.DataFrame, path: Path, role: str, first_line: int | None, cfg: DataConfig
) -> _Table:
    """Check columns and sentences; errors name the file and line (or row).

    Empty sentences are an error, or dropped and counted when `cfg.empty` is "drop". A test split
    without a label column (or with GLUE's -1 for every row) is unlabeled.
    """
    frame.columns = [str(c).strip() for c in frame.columns]
    candidates = (cfg.text_column,) if cfg.text_column else TEXT_COLUMNS
    text_col = next((c for c in candidates if c in frame.columns), None)
    if text_col is None:
        raise PipelineError(
            f"{path}: no {' or '.join(repr(c) for c in candidates)} column (columns: "
            f"{', '.join(frame.columns)}); expected a header 'sentence<TAB>label' or headerless "
            "'sentence<TAB>label' lines (or set data.text_column)"
        )
    if frame.empty:
        raise PipelineError(f"{path}: no sentences (only a header?)")
    label_col = cfg.label_column
    if role != "test" and label_col not in frame.columns:
        raise PipelineError(
            f"{path}: no {label_col!r} column (columns: {', '.join(frame.columns)}; "
            "set data.label_column)"
        )
    table = _Table([], None, [], path, first_line)
    for row, value in enumerate(frame[text_col].tolist()):
        if isinstance(value, str) and value.strip():
            table.rows.append(row)
            table.texts.append(value.strip())
        elif cfg.empty == "error":
            raise PipelineError(
                f"{_location(path, first_line, row)}: empty sentence "
                "(set data.empty=drop to skip such rows)"
            )
    if len(table.rows) < len(frame):
        log.warning("%s: dropped %d empty sentences", path, len(frame) - len(table.rows))
    if not table.rows:
        raise PipelineError(f"{path}: no sentences left")
    if label_col in frame.columns:
        values = [str(v).strip() for v in frame[label_col].tolist()]
        if not (role == "test" and set(values) <= {"-1"}):
            table.values = [values[row] for row in table.rows]
    return table


def _location(path: Path, first_line: int | None, row: int) -> str:
    return f"{path}, line {row + first_line}" if first_line else f"{path}, row {row + 1}"


def _report_duplicates(path: Path, texts: list[str], labels: np.ndarray) -> None:
    """Log repeated (sentence, label) rows and sentences that carry more than one label."""
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


def _from_hub(
    cfg: DataConfig, wanted: dict[str, str]
) -> tuple[dict[str, _Table], list[str] | None]:
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
        if name not in dataset:
            raise PipelineError(
                f"dataset {spec!r} has no split {name!r} (has: {', '.join(dataset)})"
            )
        frame = dataset[name].to_pandas()
        tables[role] = _validate(frame, Path(f"hub:{spec}:{name}"), role, None, cfg)
    feature = dataset[wanted["train"]].features.get(cfg.label_column)
    return tables, getattr(feature, "names", None)


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
