"""What explaining a sentence costs: against labeling it, and against one encode of its variants.

    make bench-explain CONFIG=configs/alammar-2000-minilm.yaml DATA=../shared/data/sst2-sentences \\
        MODELS=models/alammar-2000-minilm,models/alammar-2000-mpnet

For each classifier and each engine it runs on (torch always, onnx where exported, int8 where
the export is int8), each of the first --sentences sentences of the config's eval split is, in turn:
labeled (`Classifier.results`), explained (`Classifier.explain`, the default method) and its
variants encoded by one `embed` call; best of --repeats each, interleaved so that a busy moment
hits all three. The target (issue 32): explaining costs at most 1.2x one encode of its variants.
Writes reports/bench/explain.{json,md}.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import cli
from pipeline.classifier import Classifier
from pipeline.data.splits import load_splits
from pipeline.encoding.batching import embed
from pipeline.encoding.onnx_encoder import EXPORT_KEY
from pipeline.explain import DEFAULT_METHOD, plan_variants
from pipeline.io import cpu, read_json, write_json, write_text
from pipeline.report import REPORTS_ROOT

OUT = REPORTS_ROOT / "bench" / "explain"


def timing(classifier: Classifier, texts: list[str], method: str, repeats: int = 3) -> dict:
    """Each text labeled, explained, and its variants embedded once (best of `repeats`,
    interleaved): medians over the texts and the explain/embed ratio of their sums."""
    if not texts:
        return {"method": method, "sentences": 0}
    best, counts = [], []
    for text in texts:
        variants = plan_variants(classifier, [text], method).variants
        counts.append(len(variants.windows))
        ways = (
            (classifier.results, ([text],)),
            (classifier.explain, ([text], method)),
            (embed, (classifier.encoder, variants)),
        )
        runs = []
        for _ in range(repeats):
            times = []
            for way, args in ways:
                started = time.perf_counter()
                way(*args)
                times.append(time.perf_counter() - started)
            runs.append(times)
        best.append(np.min(runs, axis=0))
    label_s, explain_s, embed_s = np.reshape(best, (-1, 3)).T
    return {
        "method": method,
        "sentences": len(texts),
        "variants_median": float(np.median(counts)),
        "label_ms": 1e3 * float(np.median(label_s)),
        "explain_ms": 1e3 * float(np.median(explain_s)),
        "embed_ms": 1e3 * float(np.median(embed_s)),
        "explain_over_embed": float(explain_s.sum() / embed_s.sum()),
        "explain_over_label": float(explain_s.sum() / label_s.sum()),
    }


def engines(meta: dict[str, Any]) -> list[str]:
    """The engines a model (its model.json) runs on: torch, and onnx once exported."""
    return ["torch", "onnx"] if EXPORT_KEY in meta else ["torch"]


def bench(models: list[Path], texts: list[str], repeats: int) -> dict[str, Any]:
    """Every model on every engine it has."""
    rows = []
    for model in models:
        meta = read_json(model / "model.json")
        for engine in engines(meta):
            classifier = Classifier.load(model, engine)
            classifier.explain(texts[:2])  # warm up: the first calls are slow
            precision = (
                meta.get(EXPORT_KEY, {}).get("precision", "fp32")
                if engine == "onnx"
                else meta["encoder"].get("precision", "fp32")
            )
            row = {"model": str(model), "encoder": meta["encoder"]["name"], "engine": engine}
            rows.append(
                row | {"precision": precision} | timing(classifier, texts, DEFAULT_METHOD, repeats)
            )
            print(markdown_row(rows[-1]), flush=True)
    return {"date": datetime.date.today().isoformat(), "cpu": cpu(), "rows": rows}


def markdown_row(row: dict[str, Any]) -> str:
    return (
        f"| {row['encoder']} | {row['engine']} | {row['precision']} | {row['variants_median']:.0f} "
        f"| {row['label_ms']:.1f} | {row['explain_ms']:.1f} | {row['embed_ms']:.1f} "
        f"| {row['explain_over_embed']:.2f}x | {row['explain_over_label']:.1f}x |"
    )


def markdown(report: dict[str, Any]) -> str:
    """The bench as one table."""
    sentences = report["rows"][0]["sentences"] if report["rows"] else 0
    lines = [
        f"Explaining one sentence ({DEFAULT_METHOD}), {report['date']}, {report['cpu']}; "
        f"medians over {sentences} sentences:",
        "",
        "| encoder | engine | precision | variants | label ms | explain ms "
        "| embed of the variants ms | explain / embed | explain / label |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
        *map(markdown_row, report["rows"]),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command line: the explanation bench on the classifiers given."""
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--models", required=True, help="classifier folders, comma-separated")
    parser.add_argument("--sentences", type=int, default=20, help="first N eval sentences (20)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per sentence, best kept (3)")
    args = parser.parse_args()
    texts = list(load_splits(cli.config_from_args(args).data)["eval"].texts)[: args.sentences]
    report = bench([Path(m) for m in args.models.split(",")], texts, args.repeats)
    write_json(OUT.with_suffix(".json"), report)
    write_text(OUT.with_suffix(".md"), markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    cli.run(main)
