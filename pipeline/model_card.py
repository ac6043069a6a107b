"""The model card: a README.md in every model folder, in the Hugging Face model-card layout.

YAML front matter (license, labels, the encoder as ``base_model``, the eval metrics as
``model-index``), then intended use, the data and protocol, the metrics beside the most-frequent
baseline, limits, and how to run it. Written only from what the stages recorded, never
recomputed: model.json (its "data" and "onnx" entries when present) and reports/<run>/metrics.json
when it scored this very classifier. train writes the card; evaluate and export write it again.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import yaml

from pipeline import PipelineError
from pipeline.config import DataConfig, to_dict
from pipeline.encoding.onnx_encoder import EXPORT_KEY
from pipeline.io import read_json, write_text
from pipeline.report import REPORTS_ROOT

log = logging.getLogger(__name__)

CARD_FILE = "README.md"
HUB_IDS = {  # the packaged aliases' hub ids
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "mpnet": "sentence-transformers/all-mpnet-base-v2",
}
LICENSES = {  # what is known of the shipped configs' encoders; any other: "other"
    "distilbert-base-uncased": "apache-2.0",
    "sentence-transformers/all-MiniLM-L6-v2": "apache-2.0",
    "sentence-transformers/all-mpnet-base-v2": "apache-2.0",
}
METRICS = {  # metrics.json's key: model-index's metric
    "accuracy": {"type": "accuracy"},
    "macro_f1": {"type": "f1", "name": "macro-F1", "args": {"average": "macro"}},
}
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
ENCODER = (
    "name",
    "pooling",
    "layer",
    "max_length",
    "long_texts",
)  # in the front matter (local: folder name)
TAGS = ["text-classification", "frozen-encoder", "linear-probe", "logistic-regression"]
CHECKED = ("max_abs_diff", "mean_cosine", "labels_differing", "accuracy_fp32", "accuracy_int8", "n")
BASELINE = "most_frequent_baseline"
EXAMPLE = "a visually stunning rumination"
TEMPLATE = """\
# {run}

A text classifier with the labels {labels}. The frozen encoder {encoder} ({pooling} pooling,
layer {layer}) turns a text into a vector, and a logistic regression trained on those vectors
picks the label. Made by sst2-probe: the classifier is plain arrays in `classifier.npz`, loaded
only when its SHA-256 matches `model.json`.

## Intended use

Labeling short texts like the training data below with one of {labels}: research, baselines, a
cheap first classifier. Its scores hold for data like that data; not for decisions about people.

## Data and protocol

{data}

## Metrics

{metrics}

## Limits

- {reading}
- Every text gets one of {labels}, even one that fits none of them.
- The encoder is frozen: the classifier is as good as its vectors are for this data.
- License: the encoder's own license applies to its weights and to the ONNX export made from
  them; the training data's terms apply too.

## How to run it

On torch with the training stack (`pip install '.[train]'`), or on ONNX Runtime {onnx}:

```
sst2-probe predict --model {model} --engine torch "{example}"
sst2-probe predict --model {model} --engine onnx "{example}"
```

After the export, `pip install .` alone (numpy, tokenizers, onnxruntime; no torch) labels text
with this folder (`classifier.npz`, `model.json`, `encoder.onnx`, `encoder.onnx.data`,
`tokenizer.json`):

```
pip install .
sst2-probe predict --model {model} "{example}"
pip install '.[serve]' && sst2-probe serve --model {model} --port 8000
```

From Python, `engine` `auto` (onnx when exported), `onnx` or `torch`:

```python
from pipeline import Classifier

Classifier.load("{model}", engine="auto").predict(["{example}"])
```
"""


class Plain(yaml.SafeDumper):
    """yaml.safe_dump's output, without anchors and aliases for values written twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def data_entry(data: DataConfig, splits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """model.json's "data": the data settings, and each split's size, file, the split's name for
    model-index, and truncated count (local files by name only: model.json and the card travel
    with the model)."""
    entry = {}
    for role, split in splits.items():
        origin = split.get("origin") or {"file": split["source"], "chosen": ""}  # older features
        file = origin["file"]
        name = file.rsplit(":", 1)[-1] if file.startswith("hub:") else Path(file).stem
        chosen = f" ({origin['chosen']})" if origin["chosen"] else ""
        shown = file if file.startswith("hub:") else Path(file).name
        entry[role] = {
            "n": split["n"],
            "source": shown + chosen,
            "split": name + chosen,
            "truncated": split.get("truncated"),
        }
    return {**to_dict(data), "dir": data.dir and Path(data.dir).name, "splits": entry}


def base_model(name: str) -> str | None:
    """The encoder's hub id, or None for a local folder."""
    name = HUB_IDS.get(name, name)
    return name if HUB_ID.fullmatch(name) else None


def recorded_metrics(meta: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """metrics.json when it scored this classifier (same run, features and C, and not older)."""
    if not path.is_file():
        return None
    try:
        metrics = read_json(path)
    except PipelineError as err:
        log.warning("model card: leaving out the metrics: %s", err)
        return None
    same = all(metrics.get(key) == meta[key] for key in ("run", "features", "C") if key in meta)
    return metrics if same and metrics.get("created", "") >= meta.get("created", "") else None


def scored(metrics: dict[str, Any], splits: dict[str, Any]) -> list[tuple[dict, str, str]]:
    """(scores, where: the split's source or the protocol's note, the split's name) for eval, and
    for test if it was scored."""
    found = []
    for role, scores in (("eval", metrics), ("test", metrics.get("test"))):
        split = splits.get(role, {"source": role, "split": role})
        if scores is None:
            continue
        if role == "eval" and (metrics["protocol"] in ("kfold", "mteb") or role not in splits):
            split = {"source": metrics["scored"], "split": metrics["scored"]}
        found.append((scores, split["source"], split["split"]))
    return found


def front_matter(meta: dict[str, Any], run: str, metrics: dict[str, Any] | None) -> dict:
    """The Hugging Face model card metadata, with the labels and the encoder's settings."""
    hub, data = base_model(meta["encoder"]["name"]), meta.get("data") or {}
    front: dict[str, Any] = {"license": LICENSES.get(hub or "", "other")}
    if front["license"] == "other":
        front["license_name"] = "encoder-license"  # the encoder's own (the card's Limits)
    front |= {"base_model": hub} if hub else {}
    front |= {"datasets": [data["dataset"]]} if data and not data["dir"] else {}
    front |= {
        "library_name": "sst2-probe",
        "pipeline_tag": "text-classification",
        "tags": TAGS + (["onnx"] if EXPORT_KEY in meta else []),
        "labels": list(meta["labels"]),
        "encoder": {key: meta["encoder"][key] for key in ENCODER if key in meta["encoder"]}
        | {"name": hub or Path(meta["encoder"]["name"]).name},
    }
    if not metrics:
        return front
    name = data.get("dir") or data.get("dataset") or meta.get("features", "unknown")
    dataset = {"type": name, "name": name}
    dataset |= {"config": data["subset"]} if data.get("subset") and not data["dir"] else {}
    task = {"type": "text-classification", "name": "Text Classification"}
    results = [
        {
            "task": task,
            "dataset": dataset | {"split": split},
            "metrics": [{**m, "value": scores["classifier"][key]} for key, m in METRICS.items()],
        }
        for scores, _, split in scored(metrics, data.get("splits", {}))
    ]
    return front | {"model-index": [{"name": run, "results": results}]}


def data_text(meta: dict[str, Any]) -> str:
    """The data, its splits and how C was chosen, as model.json recorded them."""
    data, lines = meta.get("data"), []
    if data:
        where = f"the local folder `{data['dir']}`" if data["dir"] else f"`{data['dataset']}`"
        where += f" (`{data['subset']}`)" if data["subset"] and not data["dir"] else ""
        lines += [f"Data: {where}; protocol `{data['protocol']}`, seed {data['seed']}.", ""]
        lines += [
            f"- {role}: {s['source']}, {s['n']} sentences" for role, s in data["splits"].items()
        ]
    else:
        lines.append("The data is not recorded in this model.json (an older sst2-probe's).")
    if "C" in meta:
        lines += [
            "",
            f"C = {meta['C']} was chosen by {meta['cv_folds']}-fold cross-validation "
            f"on train over {', '.join(meta['cv_grid'])} (accuracy {meta['cv_accuracy']:.4f}), "
            f"then refit on all {meta['n_train']} train sentences ({meta['dim']} features, "
            f"standardized: {str(meta['standardize']).lower()}).",
        ]
    return "\n".join(lines)


def metrics_text(run: str, metrics: dict[str, Any] | None, splits: dict[str, Any]) -> str:
    """The classifier's accuracy and macro-F1 beside the most-frequent-class baseline's."""
    if not metrics:
        return f"Not evaluated yet: `make evaluate` writes `reports/{run}/metrics.json`."
    lines = [f"From `reports/{run}/metrics.json` ({metrics['created']}):", ""]
    lines += ["| scored on | model | accuracy | macro-F1 |", "|---|---|---|---|"]
    for scores, where, _ in scored(metrics, splits):
        for who, key in (("this classifier", "classifier"), ("most frequent class", BASELINE)):
            s = scores[key]
            lines.append(f"| {where} | {who} | {s['accuracy']:.4f} | {s['macro_f1']:.4f} |")
    return "\n".join(lines)


def reading(encoder: dict[str, Any], train: dict[str, Any]) -> str:
    """How much of a long text is read (a limit of the card)."""
    window = encoder["max_length"]
    if encoder.get("long_texts", "truncate") == "chunk":
        return (
            f"A text longer than {window} tokens is read whole, in overlapping windows of {window} "
            "tokens whose vectors are averaged; the classifier was trained on the texts below, "
            "so much longer texts are further from what it has seen. Each result says how many "
            "tokens and windows it read."
        )
    cut = train.get("truncated")
    of = f" ({cut} of {train['n']} train sentences were)" if cut is not None else ""
    return f"Only the first {window} tokens of a text are read; the rest is cut off{of}."


def model_card(
    model_dir: Path, metrics: dict[str, Any] | None = None, reports_root: Path = REPORTS_ROOT
) -> str:
    """The card's text for the classifier in `model_dir`."""
    meta = read_json(Path(model_dir) / "model.json")
    run, encoder = meta.get("run") or Path(model_dir).name, meta["encoder"]
    if metrics is None:
        metrics = recorded_metrics(meta, Path(reports_root) / run / "metrics.json")
    splits, hub = (meta.get("data") or {}).get("splits", {}), base_model(encoder["name"])
    local = f"`{Path(encoder['name']).name}`"
    train, onnx = splits.get("train", {}), meta.get(EXPORT_KEY)
    check = onnx and onnx.get("check", {})
    check = onnx and ", ".join(f"{k} {v:.3g}" for k, v in check.items() if k in CHECKED)
    text = TEMPLATE.format(
        run=run,
        labels=", ".join(f"`{label}`" for label in meta["labels"]),
        encoder=f"[{hub}](https://huggingface.co/{hub})" if hub else local,
        pooling=encoder["pooling"],
        layer=encoder["layer"],
        reading=reading(encoder, train),
        data=data_text(meta),
        metrics=metrics_text(run, metrics, splits),
        model=f"models/{run}",
        onnx=f"(exported: {onnx['precision']}, {onnx['created']}; checked against torch: {check})"
        if onnx
        else f"after `make export MODEL=models/{run}`",
        example=EXAMPLE,
    )
    front = yaml.dump(
        front_matter(meta, run, metrics), Dumper=Plain, sort_keys=False, allow_unicode=True
    )
    return f"---\n{front}---\n\n{text}"


def write_model_card(
    model_dir: Path, metrics: dict[str, Any] | None = None, reports_root: Path = REPORTS_ROOT
) -> Path:
    """Write `model_dir`/README.md (atomically, only when it changed); return its path.

    `metrics`: evaluate's, else reports_root/<run>/metrics.json when it scored this classifier."""
    path = Path(model_dir) / CARD_FILE
    text = model_card(model_dir, metrics, reports_root)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text(path, text)
    return path
