"""Long texts: what reading a document whole (chunk) gains over its first window (truncate).

    make long-study CONFIG=configs/alammar-2000-minilm.yaml DATA=../shared/data/sst2-sentences

Documents of 6 to 16 held-out labeled sentences, labeled by their majority, a share of them
(`--minority-first`) opening with their minority (`pipeline.studies.long_documents`), are drawn
until each length bucket (windows of ``encoder.max_length``: 1, 2, 3-4, >4) has `--per-bucket`.
The classifier is the run's logistic regression on its training sentences, as `make train` fits
it. Each document's windows are encoded once and pooled four ways:
truncate (the first window), chunk (the default: their mean weighted by real tokens), max and
first+last. The time: `embed` on all documents under chunk and truncate, in turn (medians).
Writes reports/long/<run>.json and .md.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np

from pipeline import cli
from pipeline.config import Config
from pipeline.data.splits import Split, load_splits
from pipeline.encoding.batching import Engine, Tokens, embed, plan, pool_windows, run_batches
from pipeline.features import build_features, load_arrays
from pipeline.io import cpu, write_json, write_text
from pipeline.probe import LinearProbe
from pipeline.report import REPORTS_ROOT
from pipeline.studies.long_documents import (
    BUCKETS,
    Documents,
    bucket,
    documents,
    first_window_disagrees,
    held_out,
)
from pipeline.train import check_class_counts, logistic_regression_cv

LONG_ROOT = REPORTS_ROOT / "long"
METHODS = ("truncate", "chunk", "max", "first+last")


def window_vectors(engine: Engine, tokens: Tokens) -> np.ndarray:
    """Every window's vector (a row per window), in the shared token-budget batches."""
    rows = np.empty((len(tokens.ids), engine.dim), dtype=np.float32)
    for _, positions, vectors in run_batches(
        engine, tokens.ids, plan(tokens, engine.batch_tokens, engine.packed)
    ):
        rows[positions] = vectors
    return rows


def pooled(rows: np.ndarray, tokens: Tokens) -> dict[str, np.ndarray]:
    """A vector per document for each of METHODS, from its windows' vectors."""
    starts, ends = tokens.starts, tokens.starts + tokens.windows
    return {
        "truncate": rows[starts],
        "chunk": pool_windows(rows, tokens),
        "max": np.stack([rows[a:b].max(axis=0) for a, b in zip(starts, ends, strict=True)]),
        "first+last": (rows[starts] + rows[ends - 1]) / 2,
    }


def sentence_classifier(config: Config, splits: dict[str, Split]) -> tuple[LinearProbe, dict]:
    """The run's logistic regression on its training sentences' features (built or cached)."""
    x, y = load_arrays(build_features(config, splits=splits), "train")
    check_class_counts(y, splits["train"].names, config.train.cv)
    search = logistic_regression_cv(config).fit(x, y)
    info = {"sentences": len(y), "C": search.best_params_["logisticregression__C"]}
    return LinearProbe.from_sklearn(search.best_estimator_), info | {
        "cv_accuracy": round(float(search.best_score_), 4)
    }


def reading(engine: Any, long_texts: str) -> Any:
    """`engine` (a torch `Encoder`) set to read long texts as `long_texts` says; same model."""
    config = dataclasses.replace(engine.config, long_texts=long_texts)
    return dataclasses.replace(engine, config=config, cutter=None)


def read_times(engine: Any, texts: list[str], repeats: int) -> dict[str, Any]:
    """Wall time of `embed` on `texts` under chunk and truncate, in turn (medians), with what each
    encodes and reads."""
    ways = {name: reading(engine, name) for name in ("chunk", "truncate")}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeats):
        for name, way in ways.items():
            started = time.perf_counter()
            embed(way, texts)
            seconds[name].append(time.perf_counter() - started)
    out: dict[str, Any] = {}
    for name, way in ways.items():
        tokens = way.tokenize(texts)
        out[name] = {
            "median_s": statistics.median(seconds[name]),
            "runs_s": seconds[name],
            "windows": len(tokens.ids),
            "tokens_encoded": sum(map(len, tokens.ids)),
            "tokens_read": int(tokens.counts.sum()),
        }
    out["chunk_over_truncate"] = out["chunk"]["median_s"] / out["truncate"]["median_s"]
    return out


def score(docs: Documents, tokens: Tokens, right: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per bucket (and all): documents, mean tokens, the share whose first window disagrees, each
    method's accuracy (on all, and on those), and the paired chunk/truncate count."""
    names = np.asarray([bucket(w) for w in tokens.windows.tolist()])
    disagrees = first_window_disagrees(docs, tokens)
    out = {}
    for name in [*BUCKETS, "all"]:
        kept = names == name if name != "all" else np.ones(len(names), dtype=bool)
        out[name] = {
            "documents": int(kept.sum()),
            "tokens_mean": _mean(tokens.counts[kept]),
            "first_window_disagrees": _mean(disagrees[kept]),
            "accuracy": {m: _mean(right[m][kept]) for m in METHODS},
            "accuracy_first_window_disagrees": {
                m: _mean(right[m][kept & disagrees]) for m in METHODS
            },
            "right_in_one_only": {
                "chunk": int((right["chunk"] & ~right["truncate"] & kept).sum()),
                "truncate": int((right["truncate"] & ~right["chunk"] & kept).sum()),
            },
        }
    return out


def long_text_study(
    config: Config,
    per_bucket: int = 100,
    seed: int = 0,
    repeats: int = 3,
    minority_first: float = 0.5,
) -> dict[str, Any]:
    """Build the documents, score truncate/chunk/max/first+last per bucket, time chunk against
    truncate; write reports/long/<run>.json and .md."""
    from pipeline.encoding.encoder import load_encoder  # torch only here

    started = time.perf_counter()
    splits = load_splits(config.data)
    probe, classifier = sentence_classifier(config, splits)
    engine = load_encoder(dataclasses.replace(config.encoder, long_texts="chunk"))
    texts, labels, sources = held_out(config, splits)
    lengths = engine.tokenize(texts).counts
    windows = lambda batch: engine.tokenize(batch).windows  # noqa: E731
    docs = documents(texts, labels, lengths, windows, per_bucket, seed, minority_first)
    tokens = engine.tokenize(docs.texts, offsets=True)
    right = {
        name: probe.predict_proba(vectors).argmax(axis=1) == docs.labels
        for name, vectors in pooled(window_vectors(engine, tokens), tokens).items()
    }
    buckets = score(docs, tokens, right)
    long = buckets[">4"]["accuracy"]
    gap = None if long["chunk"] is None else 100 * (long["chunk"] - long["truncate"])
    report = {
        "run": config.run,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "encoder": {k: getattr(engine.config, k) for k in ("name", "pooling", "max_length")},
        "stride": engine.cutter.truncation["stride"],
        "cpu": cpu(),
        "sentences": {"held_out": len(texts), "sources": sources},
        "seed": seed,
        "minority_first": minority_first,
        "classifier": classifier,
        "buckets": buckets,
        "time": read_times(engine, docs.texts, repeats),
        "target": {"points": gap, "met": gap is not None and gap >= 10},  # chunk - truncate, >4
    }
    report["seconds"] = time.perf_counter() - started
    write_json(LONG_ROOT / f"{config.run}.json", report)
    write_text(LONG_ROOT / f"{config.run}.md", markdown(report))
    print(markdown(report))
    return report


def markdown(report: dict[str, Any]) -> str:
    """The study as Markdown: accuracy per bucket and method (all documents, then those whose
    first window disagrees), the target and the time."""
    enc, c, t, gap = report["encoder"], report["classifier"], report["time"], report["target"]
    lines = [
        f"{enc['name']} ({enc['pooling']} pooling), windows of {enc['max_length']} tokens sharing "
        f"{report['stride']}; run {report['run']}, {report['date']}, {report['cpu']}.",
        f"Classifier: logistic regression on {c['sentences']:,} training sentences (C={c['C']:g}, "
        f"CV accuracy {c['cv_accuracy']:.4f}). Documents: 6-16 held-out sentences "
        f"({report['sentences']['held_out']:,}: {'; '.join(report['sentences']['sources'])}), "
        f"seed {report['seed']}, minority first in {report['minority_first']:.0%}.",
    ]
    head = " | ".join(METHODS) + " |"
    lines += ["", f"| windows | documents | mean tokens | {head}", "|---|---:|---:|" + "---:|" * 4]
    for name, row in report["buckets"].items():
        cells = [str(row["documents"]), _num(row["tokens_mean"], "{:.0f}")]
        cells += [_num(row["accuracy"][m], "{:.1%}") for m in METHODS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Documents whose first window's majority is not the document's, and accuracy:"]
    lines += ["", f"| windows | documents (share) | {head}", "|---|---:|" + "---:|" * 4]
    for name, row in report["buckets"].items():
        share, hard = row["first_window_disagrees"], row["accuracy_first_window_disagrees"]
        cells = [f"{round(row['documents'] * (share or 0))} ({_num(share, '{:.0%}')})"]
        cells += [_num(hard[m], "{:.1%}") for m in METHODS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ch, tr, only = t["chunk"], t["truncate"], report["buckets"][">4"]["right_in_one_only"]
    verdict = "no documents" if gap["points"] is None else f"{gap['points']:+.1f} points"
    lines += [
        "",
        f"Target, chunk beats truncate by >= 10 points over 4 windows: {verdict}, "
        f"{'met' if gap['met'] else 'not met'} (right by chunk alone {only['chunk']}, by "
        f"truncate alone {only['truncate']}).",
        f"Time to encode all documents (median of {len(ch['runs_s'])}, in turn): chunk "
        f"{ch['median_s']:.1f} s ({ch['windows']:,} windows, {ch['tokens_encoded']:,} tokens "
        f"encoded, {ch['tokens_read']:,} read), truncate {tr['median_s']:.1f} s "
        f"({tr['windows']:,} windows, {tr['tokens_encoded']:,} tokens, {tr['tokens_read']:,} "
        f"read): chunk costs {t['chunk_over_truncate']:.2f}x.",
    ]
    return "\n".join(lines) + "\n"


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def _num(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)


def main() -> None:
    """Command line: the long-text study for a config."""
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--per-bucket", type=int, default=100, help="documents per length bucket")
    parser.add_argument("--seed", type=int, default=0, help="seed of the documents")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of chunk and truncate")
    parser.add_argument("--minority-first", type=float, default=0.5, help="share opening so")
    args = parser.parse_args()
    if min(args.per_bucket, args.repeats) < 1 or not 0 <= args.minority_first <= 1:
        parser.error("--per-bucket and --repeats must be >= 1, --minority-first in [0, 1]")
    config = cli.config_from_args(args)
    long_text_study(config, args.per_bucket, args.seed, args.repeats, args.minority_first)


if __name__ == "__main__":
    cli.run(main)
