"""Export a trained classifier's encoder to ONNX, so it can label text without the training stack.

    python -m pipeline.export --model models/alammar-2000-minilm                  # fp32
    python -m pipeline.export --model models/sst2-minilm --precision int8       # smaller, faster

Writes into the model folder ``encoder.onnx`` (the plain padded model with the run's pooling and
layers inside: it outputs the very vector the classifier was trained on, for any batch size and
sentence length), its weights ``encoder.onnx.data`` and ``tokenizer.json``, and records their
SHA-256s with what made them in model.json under "onnx". The classifier head stays in
classifier.npz, shared with the torch engine. Then `Classifier.load(..., engine="onnx")` and
``predict.py --engine onnx`` run on ONNX Runtime alone (`pipeline.encoding.onnx_encoder`).

The export checks itself before anything is kept, against the torch encoder (fp32, padded):
  fp32: 256 of the run's eval sentences: max |difference| of the vectors <= 1e-4, same labels;
  int8: the run's eval sentences (up to 2,000, labeled): mean cosine to fp32 >= 0.995 and
        accuracy within 0.3 points of fp32's.
The eval sentences are read from the file the features recorded (--texts FILE to use another).
An export that fails its check writes nothing. int8 is ONNX Runtime's dynamic quantization (uint8
weights per output channel, activations per tensor), the FFN's down-projection kept fp32; why:
docs/deploy.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import warnings
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from pipeline import PipelineError, cli
from pipeline.classifier import load_torch_encoder
from pipeline.config import DataConfig, EncoderConfig
from pipeline.encoding import row_cosines
from pipeline.encoding.encoder import Encoder, pool, pooled_layers
from pipeline.encoding.onnx_encoder import (
    ENCODER_FILE,
    EXPORT_KEY,
    FILES,
    INPUTS,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    load_onnx_encoder,
)
from pipeline.feature_cache import FEATURES_ROOT
from pipeline.io import read_json, sha256_file, write_json
from pipeline.model_card import write_model_card
from pipeline.probe import LinearProbe, load_probe

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8")
FP32_TEXTS, FP32_MAX_DIFF = 256, 1e-4
INT8_TEXTS, INT8_MIN_COSINE, INT8_MAX_ACCURACY_DROP = 2000, 0.995, 0.003
OPSET = 17
VERSIONED = ("torch", "transformers", "onnx", "onnxruntime", "tokenizers")


class Pooled(torch.nn.Module):
    """The encoder with the run's pooling and layers: (input_ids, attention_mask) -> vectors,
    computed as the torch encoder computes them on padded batches."""

    def __init__(self, model: torch.nn.Module, config: EncoderConfig) -> None:
        super().__init__()
        self.model, self.config = model, config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden_states = pooled_layers(self.config) != [-1]
        output = self.model(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=hidden_states
        )
        return pool(output, attention_mask, self.config)


def export(model_dir: Path, precision: str = "fp32", texts_file: Path | None = None) -> dict:
    """Export, check and record the encoder of the classifier in `model_dir`; return the entry
    written to its model.json. Nothing is written when the check fails."""
    if precision not in PRECISIONS:
        raise PipelineError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    model_dir = Path(model_dir)
    probe, meta = load_probe(model_dir)
    texts, labels, source = sentences_to_check(
        meta, texts_file, FP32_TEXTS if precision == "fp32" else INT8_TEXTS
    )
    if precision == "int8" and labels is None:
        raise PipelineError(f"int8's check needs labeled sentences; {source} has none (--texts)")
    encoder = load_torch_encoder(model_dir, meta, as_exported=True)
    log.info("export: torch vectors of %d sentences from %s", len(texts), source)
    reference = encoder.encode(texts)
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".export-") as tmp:
        tmp = Path(tmp)
        log.info("export: exporting %s to ONNX (%s)", meta["encoder"]["name"], precision)
        entry = write_export(encoder, tmp, precision)
        exported = load_onnx_encoder(tmp, {**meta, EXPORT_KEY: entry}).encode(texts)
        found = check(reference, exported, probe, labels, precision)
        entry["check"] = found | {"texts": source, "n": len(texts)}
        if read_json(model_dir / "model.json") != meta:
            raise PipelineError(
                f"{model_dir / 'model.json'} changed during the export; run it again"
            )
        for name in FILES.values():
            os.replace(tmp / name, model_dir / name)
    write_json(model_dir / "model.json", {**meta, EXPORT_KEY: entry})
    write_model_card(model_dir)
    return entry


def write_export(encoder: Encoder, folder: Path, precision: str) -> dict[str, Any]:
    """Write `encoder` (padded, fp32) as FILES (graph, weights, tokenizer) into `folder`;
    return their model.json entry, without the check."""
    write_onnx(Pooled(encoder.model, encoder.config), folder / ENCODER_FILE)
    if precision == "int8":
        quantize(folder / ENCODER_FILE)
    graph = onnx.load(str(folder / ENCODER_FILE))
    onnx.save_model(
        graph, str(folder / ENCODER_FILE), save_as_external_data=True, location=WEIGHTS_FILE
    )
    encoder.cutter.save(str(folder / TOKENIZER_FILE))  # the very tokenizer torch ran
    return {
        **{
            key: {"file": name, "sha256": sha256_file(folder / name)} for key, name in FILES.items()
        },
        "pad_id": encoder.tokenizer.pad_token_id or 0,
        "precision": precision,
        "opset": OPSET,
        "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
        "quantization": QUANTIZATION if precision == "int8" else None,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {name: version(name) for name in VERSIONED},
    }


def sentences_to_check(
    meta: dict[str, Any], texts_file: Path | None, n: int
) -> tuple[list[str], np.ndarray | None, str]:
    """Up to `n` sentences (evenly spread) and their class ids (None: unlabeled) from
    `texts_file`, else the sentences the run was evaluated on (its train sentences with kfold),
    as the features recorded them; and where they came from."""
    from pipeline.data.splits import read_split

    rows = None
    if texts_file is None:
        features = FEATURES_ROOT / meta["features"] / "meta.json"
        if not features.is_file():
            raise PipelineError(
                f"{features} is gone, so the run's eval sentences are unknown: pass --texts FILE"
            )
        recorded = read_json(features)
        split = recorded["splits"].get("eval") or recorded["splits"]["train"]
        if "origin" not in split:
            raise PipelineError(f"{features} is older than export: pass --texts FILE")
        origin = split["origin"]
        texts_file, rows = Path(origin["file"]), origin["rows"]
        if not texts_file.is_file():
            raise PipelineError(f"the run's eval file {texts_file} is not here: pass --texts FILE")
        data = DataConfig(**{**recorded["request"]["data"], "labels": meta["labels"]})
    else:
        data = DataConfig()
    split = read_split(texts_file, "test", data)
    if rows is not None:
        split = split.subset(np.asarray(rows), origin["chosen"])
    keep = np.unique(np.linspace(0, len(split) - 1, min(n, len(split))).round().astype(int))
    labels = None if split.labels is None else split.labels[keep]
    if split.labels is not None and split.names != meta["labels"]:
        labels = None  # other class names: no accuracy to compare
    return [split.texts[i] for i in keep], labels, split.shown


def check(
    reference: np.ndarray, exported: np.ndarray, probe: LinearProbe, labels: np.ndarray | None,
    precision: str,
) -> dict[str, Any]:  # fmt: skip
    """The check's numbers, or a PipelineError naming what failed."""
    same = probe.predict_proba(reference).argmax(1) == probe.predict_proba(exported).argmax(1)
    cosines = row_cosines(reference, exported)
    found = {
        "max_abs_diff": float(np.abs(reference - exported).max()),
        "mean_cosine": round(float(cosines.mean()), 6),
        "labels_differing": int((~same).sum()),
    }
    if precision == "fp32":
        found["limits"] = {"max_abs_diff": FP32_MAX_DIFF, "labels_differing": 0}
        failed = found["max_abs_diff"] > FP32_MAX_DIFF or not same.all()
    else:
        accuracy = [
            float((probe.predict_proba(x).argmax(1) == labels).mean())
            for x in (reference, exported)
        ]
        found |= {"accuracy_fp32": round(accuracy[0], 5), "accuracy_int8": round(accuracy[1], 5)}
        found["limits"] = {"mean_cosine": INT8_MIN_COSINE, "accuracy_drop": INT8_MAX_ACCURACY_DROP}
        failed = (
            found["mean_cosine"] < INT8_MIN_COSINE
            or accuracy[0] - accuracy[1] > INT8_MAX_ACCURACY_DROP
        )
    log.info("export: check %s", found)
    if failed:
        raise PipelineError(
            f"the {precision} export failed its check, so nothing was kept: {found}"
        )
    return found


def write_onnx(model: torch.nn.Module, path: Path) -> None:
    """Export `model` with dynamic batch and sequence axes to one ONNX file (TorchScript
    exporter, OPSET). The example batch has a padded row, so the traced graph applies the mask."""
    example = (
        torch.tensor([[101, 2023, 102], [101, 102, 0]]),
        torch.tensor([[1, 1, 1], [1, 1, 0]]),
    )
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS} | {"vectors": {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on Python branches; deprecation
        torch.onnx.export(
            model.eval(),
            example,
            str(path),
            input_names=list(INPUTS),
            output_names=["vectors"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


QUANTIZATION = {
    "method": "onnxruntime.quantization.quantize_dynamic",
    "weights": "uint8, one scale and zero point per output channel",
    "activations": "uint8, one scale per tensor, computed at run time",
    "fp32": "the pooler and each MatMul whose weight narrows (the FFN's down-projection)",
}


def quantize(path: Path) -> None:
    """Replace the fp32 graph at `path` by ONNX Runtime's dynamic int8 one (`QUANTIZATION`).

    The FFN's down-projection reads the GELU's output, whose range one int8 scale per tensor
    fits worst: quantized, it alone costs MiniLM 0.004 of mean cosine (docs/deploy.md).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(path)).graph
    shapes = {weight.name: list(weight.dims) for weight in graph.initializer}

    def narrows(node: onnx.NodeProto) -> bool:
        shape = shapes.get(node.input[1], [0, 0])
        return shape[0] > shape[-1]

    kept = [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and ("pooler" in node.name or narrows(node))
    ]
    fp32 = path.with_suffix(".fp32.onnx")
    os.replace(path, fp32)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # ONNX Runtime's advice to pre-process, on the root logger
    try:
        quantize_dynamic(
            fp32,
            path,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            weight_type=QuantType.QUInt8,  # u8 x u8: no u8 x s8 saturation on CPUs without VNNI
            nodes_to_exclude=kept,
        )
    finally:
        root.setLevel(level)
    fp32.unlink()


def main() -> None:
    """Command line: export one model folder."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="classifier (models/<run>)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="fp32 or int8")
    parser.add_argument(
        "--texts",
        type=Path,
        help="data file to check the export on (default: the run's eval file); int8 needs labels",
    )
    args = parser.parse_args()
    entry = export(args.model, args.precision, args.texts)
    print(f"exported {args.model / ENCODER_FILE} ({args.precision}): check {entry['check']}")


if __name__ == "__main__":
    cli.run(main)
