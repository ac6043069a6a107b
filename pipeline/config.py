"""Run configuration: small dataclasses with visible defaults, read from YAML plus overrides.

A config file only needs the keys it changes; ``key=value`` overrides use dotted names
(``encoder.pooling=mean``) and YAML values (``train.cs=[0.1,1]``).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline import PipelineError

POOLINGS = ("cls", "mean", "pooler")
EMPTY_SENTENCES = ("error", "drop")
PROTOCOLS = ("split", "holdout", "kfold", "mteb")  # each a function in pipeline.protocols
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
DEVICES = ("auto", "cpu", "cuda")
LONG_TEXTS = ("chunk", "truncate")
RUNNERS = ("local", "ray")  # where the encoder's batches run (not Classifier's engine)
RENAMED = {"engine": "runner"}  # older encoder settings in model.json / meta.json


@dataclass
class DataConfig:
    """Where the sentences come from and how they are split."""

    dataset: str = "glue"  # Hugging Face hub dataset, used when `dir` is empty
    subset: str | None = "sst2"
    dir: str | None = None  # local folder with train/dev files (make ... DATA=DIR)
    train_split: str = "train"
    eval_split: str = "validation"  # a local folder may name it dev.tsv
    test_split: str | None = "test"  # read when present (labeled or not); None: no test split
    text_column: str | None = None  # default: `sentence`, else `text`
    label_column: str = "label"
    labels: list[str] | None = None  # class names in id order; default: from the data
    protocol: str = "split"  # split (train -> eval) | holdout | kfold (no eval split) | mteb
    holdout: float = 0.25  # protocol=holdout: the stratified fraction of train to evaluate on
    folds: int = 10  # protocol=kfold: outer cross-validation folds
    samples_per_label: int = 8  # protocol=mteb: train sentences per label in each experiment
    experiments: int = 10  # protocol=mteb: undersampled fits, averaged
    limit: int | None = None  # keep only the first N training sentences
    seed: int = 42
    empty: str = "error"  # empty sentences: error | drop (with a count)


@dataclass
class EncoderConfig:
    """Which frozen encoder makes the sentence vectors, and how."""

    name: str = "distilbert-base-uncased"  # hub id, local folder, or an alias: minilm, mpnet
    revision: str = "main"
    pooling: str = "cls"  # cls | mean | pooler
    layer: int | list[int] = -1  # hidden layer to pool (negative from the top); a list concatenates
    max_length: int = 128  # tokens per window (special tokens included)
    long_texts: str = "chunk"  # chunk: overlapping windows, pooled | truncate: the first window
    stride: int | None = None  # chunk: tokens two windows share; None: a quarter of a window
    precision: str = "fp32"  # fp32 | bf16 | fp16 (CUDA only) | int8 (CPU only, compiled)
    batch_tokens: int = 4096  # tokens per batch (flat from 4k up on CPU; raise on a GPU)
    device: str = "auto"  # auto | cpu | cuda
    runner: str = "local"  # local | ray (a Ray Data actor pool: pip install -e '.[scale]')


@dataclass
class TrainConfig:
    """The logistic regression and its cross-validated choice of C."""

    cs: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0])
    cv: int = 5
    standardize: bool = False
    max_iter: int = 2000
    save_joblib: bool = False  # also save the scikit-learn object (a pickle) for your own code


@dataclass
class Config:
    """One run: its name (for models/ and reports/) and its three sections."""

    run: str = "default"
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Read a YAML config (defaults when `path` is None) and apply ``key=value`` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise PipelineError(f"config file not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise PipelineError(f"{path}: not valid YAML: {err}") from None
        if not isinstance(raw, dict):
            raise PipelineError(f"{path}: expected a mapping of keys to values at the top")
        raw.setdefault("run", path.stem)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise PipelineError(f"override {item!r} is not of the form key=value")
        section, _, name = key.strip().rpartition(".")
        target = raw.setdefault(section, {}) if section else raw
        if not isinstance(target, dict):
            raise PipelineError(f"override {item!r}: {section!r} is not a section")
        target[name] = yaml.safe_load(value) if value.strip() else None
    config = _build(Config, raw, where=str(path or "config"))
    _validate(config)
    return config


def recorded_encoder(settings: dict[str, Any], where: Path) -> EncoderConfig:
    """The `EncoderConfig` that a model.json at `where` recorded (older names read as today's)."""
    settings = {RENAMED.get(key, key): value for key, value in settings.items()}
    settings.setdefault("long_texts", "truncate")  # before long texts were chunked, they were cut
    unknown = set(settings) - {f.name for f in dataclasses.fields(EncoderConfig)}
    if unknown:
        raise PipelineError(
            f"{where} was made by a newer sst2-probe (unknown encoder settings: "
            f"{', '.join(sorted(unknown))}); update this checkout to use it"
        )
    return EncoderConfig(**settings)


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-dict form of a config (or section), for JSON artifacts."""
    return dataclasses.asdict(obj)


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass `cls` from `raw`, rejecting unknown keys with a suggestion."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = (
                f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(fields)}"
            )
            raise PipelineError(f"{where}: unknown key {key!r}{hint}")
        default = fields[key].default_factory() if _has_factory(fields[key]) else None
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise PipelineError(f"{where}: {key!r} must be a mapping")
            value = _build(type(default), value, f"{where}: {key}")
        kwargs[key] = value
    return cls(**kwargs)


def _has_factory(f: dataclasses.Field) -> bool:
    return f.default_factory is not dataclasses.MISSING


def _validate(config: Config) -> None:
    """Check choices, types and ranges; every message names the key and the valid values."""
    enc, data, train = config.encoder, config.data, config.train
    _choice("encoder.pooling", enc.pooling, POOLINGS)
    _choice("encoder.precision", enc.precision, PRECISIONS)
    _choice("encoder.device", enc.device, DEVICES)
    _choice("encoder.runner", enc.runner, RUNNERS)
    _choice("data.empty", data.empty, EMPTY_SENTENCES)
    _choice("data.protocol", data.protocol, PROTOCOLS)
    layers = enc.layer if isinstance(enc.layer, list) and enc.layer else [enc.layer]
    for layer in layers:
        _typed("encoder.layer", layer, int)
    _typed("encoder.max_length", enc.max_length, int, minimum=2)
    _choice("encoder.long_texts", enc.long_texts, LONG_TEXTS)
    if enc.long_texts == "chunk" and enc.max_length < 3:
        raise PipelineError("encoder.long_texts=chunk needs max_length >= 3 (a token per window)")
    if enc.stride is not None:
        _typed("encoder.stride", enc.stride, int, minimum=0)
        if enc.stride > (enc.max_length - 2) // 2:
            raise PipelineError(
                f"encoder.stride must be at most half a window's tokens "
                f"({(enc.max_length - 2) // 2} for max_length {enc.max_length}), got {enc.stride}"
            )
    _typed("encoder.batch_tokens", enc.batch_tokens, int, minimum=1)
    _typed("encoder.name", enc.name, str)
    _typed("data.seed", data.seed, int)
    _typed("data.folds", data.folds, int, minimum=2)
    _typed("data.samples_per_label", data.samples_per_label, int, minimum=1)
    _typed("data.experiments", data.experiments, int, minimum=1)
    _typed("data.label_column", data.label_column, str)
    if data.text_column is not None:
        _typed("data.text_column", data.text_column, str)
    if data.labels is not None and not (
        isinstance(data.labels, list)
        and len(data.labels) >= 2
        and all(isinstance(name, str) and name for name in data.labels)
        and len(set(data.labels)) == len(data.labels)
    ):
        raise PipelineError(
            f"data.labels must be a list of at least two distinct class names, got {data.labels!r}"
        )
    _typed("train.cv", train.cv, int, minimum=2)
    _typed("train.max_iter", train.max_iter, int, minimum=1)
    _typed("train.standardize", train.standardize, bool)
    _typed("train.save_joblib", train.save_joblib, bool)
    if data.limit is not None:
        _typed("data.limit", data.limit, int, minimum=1)
    if not (isinstance(data.holdout, float) and 0.0 < data.holdout < 1.0):
        raise PipelineError(
            f"data.holdout must be a fraction between 0 and 1, got {data.holdout!r}"
        )
    cs = train.cs if isinstance(train.cs, list) else [train.cs]
    if not cs or not all(isinstance(c, int | float) and c > 0 for c in cs):
        raise PipelineError(f"train.cs must be a list of positive numbers, got {train.cs!r}")
    train.cs = [float(c) for c in cs]


def _choice(key: str, value: Any, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise PipelineError(f"{key}: unknown value {value!r}; valid values: {', '.join(valid)}")


def _typed(key: str, value: Any, kind: type, minimum: int | None = None) -> None:
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok or (minimum is not None and value < minimum):
        need = kind.__name__ + (f" >= {minimum}" if minimum is not None else "")
        raise PipelineError(f"{key} must be {need}, got {value!r}")
