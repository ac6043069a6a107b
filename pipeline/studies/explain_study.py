"""How faithful the word explanations (`pipeline.explain`) are, and what they cost, against LIME.

On the run's eval split: ERASER's comprehensiveness and sufficiency (`pipeline.studies.eraser`)
of each method's ranking, of random word order (the floor) and of LIME's: `lime`'s
`LimeTextExplainer` given the same words (the tokenizer's) as its features (`bow=False`, a removed
word becomes a space), with its default 5,000 samples on the first --lime sentences (kept in
reports/explain/<run>-lime.json: a rerun for the same model explains only new sentences with
LIME). Plausibility against GLUE SST-2's one-word phrases. Cost: model calls, milliseconds per
explanation, and one sentence's explanation against one `embed` of its variants
(`pipeline.bench.explain`).

    make explain-study CONFIG=configs/alammar-2000-minilm.yaml DATA=../shared/data/sst2-sentences
"""

from __future__ import annotations

import datetime
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import cli
from pipeline.bench.explain import timing
from pipeline.classifier import Classifier
from pipeline.data.splits import load_splits
from pipeline.encoding.batching import embed
from pipeline.explain import DEFAULT_METHOD, METHODS, explain_rows, plan_variants
from pipeline.io import cpu, read_json, sha256_file, write_json, write_text
from pipeline.probe import MODELS_ROOT
from pipeline.studies.eraser import K_PERCENT, Words, aopc, one_word_labels, plausibility, summary

REPORTS = Path("reports/explain")
GLUE_TRAIN = Path("../shared/data/sst2-glue/train.tsv")


def lime_weights(
    classifier: Classifier, texts: list[str], spans: list[Words], top: np.ndarray,
    samples: int, seed: int, cache: dict[str, dict[str, Any]],
) -> tuple[list[np.ndarray], float, float]:  # fmt: skip
    """LIME's weight of each word for the predicted class, seconds per explanation, and the
    distinct texts encoded per explanation (its samples less repeats). A sentence found in
    `cache` (by samples, seed and text) is not explained again; new ones are added to it."""
    from lime.lime_text import LimeTextExplainer

    encoder, probe = classifier.encoder, classifier.probe
    found = []
    for text, words, c in zip(texts, spans, top.tolist(), strict=True):
        key = f"{samples} {seed} {text}"
        if key not in cache:
            seen: dict[str, np.ndarray] = {}

            def proba(strings: list[str], seen: dict[str, np.ndarray] = seen) -> np.ndarray:
                if new := [s for s in dict.fromkeys(strings) if s not in seen]:
                    vectors, _ = embed(encoder, encoder.tokenize(new))
                    seen.update(zip(new, probe.predict_proba(vectors), strict=True))
                return np.array([seen[s] for s in strings])

            pieces = [text[s:e] for s, e in words]
            explainer = LimeTextExplainer(
                split_expression=lambda _, w=pieces: w, bow=False, mask_string=" ",
                random_state=seed,
            )  # fmt: skip
            started = time.perf_counter()
            lime = explainer.explain_instance(text, proba, (c,), len(words), samples)
            w = np.zeros(len(words))
            for i, value in lime.as_map()[c]:
                w[i] = value
            seconds = time.perf_counter() - started
            cache[key] = {"weights": w.tolist(), "seconds": seconds, "distinct": len(seen)}
        found.append(cache[key])
    n = max(len(found), 1)
    return (
        [np.array(f["weights"]) for f in found],
        sum(f["seconds"] for f in found) / n,
        sum(f["distinct"] for f in found) / n,
    )


def explain_study(
    config: Any, model: Path | None = None, engine: str = "auto", sentences: int | None = None,
    lime: int = 100, samples: int = 5000, timed: int = 10, seed: int = 0, glue: Path = GLUE_TRAIN,
) -> dict[str, Any]:  # fmt: skip
    """Score every method, random order and LIME on the eval split; write the report."""
    started = time.perf_counter()
    model = Path(model or MODELS_ROOT / config.run)
    classifier = Classifier.load(model, engine)
    texts = list(load_splits(config.data)["eval"].texts)[:sentences]
    base = [row for row in classifier.results(texts) if "error" not in row]
    texts, labels = [row["text"] for row in base], classifier.labels
    top = np.array([labels.index(row["label"]) for row in base])
    p_text = np.array([row["probability"] for row in base])
    p_empty = classifier.probe.predict_proba(classifier.encoder.encode([""]))[0]
    weights: dict[str, list[np.ndarray]] = {}
    cost: dict[str, dict[str, Any]] = {}
    for method in METHODS:
        began = time.perf_counter()
        rows = explain_rows(classifier, texts, method, seed)
        seconds = time.perf_counter() - began
        spans = [[(w["start"], w["end"]) for w in row["words"]] for row in rows]
        weights[method] = [np.array([w["weight"] for w in row["words"]]) for row in rows]
        calls = np.mean([len(plan.keep) for plan in plan_variants(classifier, texts, method).plans])
        cost[method] = {"calls": float(calls), "ms_batched": 1e3 * seconds / len(texts)}
        cost[method] |= timing(classifier, texts[:timed], method)
    rng = np.random.default_rng(seed)
    weights["random"] = [rng.permutation(len(words)).astype(float) for words in spans]
    if lime := min(lime, len(texts)):
        cache_file = (REPORTS / f"{config.run}-lime").with_suffix(".json")
        model_sha = sha256_file(model / "model.json") + classifier.engine
        cache = read_json(cache_file) if cache_file.is_file() else {}
        cache = cache.get("sentences", {}) if cache.get("model") == model_sha else {}
        try:
            weights["lime"], seconds, distinct = lime_weights(
                classifier, texts[:lime], spans[:lime], top[:lime], samples, seed, cache
            )
        finally:  # what LIME found so far is kept, also when the study is stopped
            write_json(cache_file, {"model": model_sha, "sentences": cache})
        cost["lime"] = {"calls": samples, "distinct": distinct, "ms_batched": 1e3 * seconds}
    lexicon = one_word_labels(glue) if glue.is_file() and len(labels) == 2 else {}
    methods: dict[str, Any] = {}
    scores: dict[str, dict[str, np.ndarray]] = {}
    for name, w in weights.items():
        n = len(w)
        scores[name] = aopc(classifier, texts[:n], spans[:n], w, top[:n], p_text[:n], p_empty)
        methods[name] = {"sentences": n, "cost": cost.get(name)}
        for part, m in (("eval", n), ("lime_subset", lime)):
            methods[name][part] = summary(scores[name], m)
            if name != "random" and lexicon and methods[name][part]:
                toward_positive = np.where(top[:m] == 1, 1.0, -1.0)
                methods[name][part]["plausibility"] = plausibility(
                    texts[:m], spans[:m], w[:m], toward_positive, lexicon
                )
    for name in METHODS if lime > 1 else ():  # paired: the same sentences, minus LIME's
        for measure, ours in scores[name].items():
            diff = ours[:lime].mean(axis=1) - scores["lime"][measure].mean(axis=1)
            methods[name]["lime_subset"] |= {
                f"{measure}_minus_lime": float(diff.mean()),
                f"{measure}_minus_lime_se": float(diff.std(ddof=1) / math.sqrt(lime)),
            }
    report = {
        "run": config.run, "model": str(model), "engine": classifier.engine,
        "encoder": classifier.meta["encoder"]["name"], "date": datetime.date.today().isoformat(),
        "cpu": cpu(), "sentences": len(texts), "lime_sentences": lime, "lime_samples": samples,
        "k_percent": list(K_PERCENT), "default": DEFAULT_METHOD, "methods": methods,
    }  # fmt: skip
    report["targets"] = targets(report)
    report["seconds"] = time.perf_counter() - started
    write_json((REPORTS / config.run).with_suffix(".json"), report)
    write_text((REPORTS / config.run).with_suffix(".md"), markdown(report))
    print(markdown(report))
    return report


def targets(report: dict[str, Any]) -> dict[str, bool | None]:
    """The issue's targets for the default method (None: not measured)."""
    best, m = report["methods"][report["default"]], report["methods"]
    ours, lime = best["lime_subset"], (m.get("lime") or {}).get("lime_subset")
    ratio = best["cost"].get("explain_over_embed")
    return {
        "comprehensiveness >= LIME's": ours["comprehensiveness"] >= lime["comprehensiveness"]
        if lime else None,
        "comprehensiveness >= 8x random's": best["eval"]["comprehensiveness"]
        >= 8 * m["random"]["eval"]["comprehensiveness"],
        "sufficiency <= LIME's": ours["sufficiency"] <= lime["sufficiency"] if lime else None,
        "calls <= LIME's / 50": best["cost"]["calls"] <= report["lime_samples"] / 50,
        "plausibility >= 80 %": best["eval"].get("plausibility", {}).get("agreement", 0) >= 0.8,
        "wall <= 1.2x one encode": ratio <= 1.2 if ratio is not None else None,
    }  # fmt: skip


def markdown(report: dict[str, Any]) -> str:
    """The study as Markdown tables: on LIME's sentences, then on all of them."""
    lines = [
        f"Explanations of {report['run']} ({report['encoder']}, {report['engine']} engine), "
        f"{report['date']}, {report['cpu']}; default method: {report['default']}.",
    ]
    for part, n in (("lime_subset", report["lime_sentences"]), ("eval", report["sentences"])):
        lines += [
            "", f"{'The first' if part == 'lime_subset' else 'All'} {n} eval sentences:", "",
            "| method | comprehensiveness AOPC | sufficiency AOPC (lower: better) "
            "| plausibility (words) | model calls | ms per explanation |",
            "|---|---|---|---|---|---|",
        ]  # fmt: skip
        for name, m in report["methods"].items():
            s, c = m[part], m["cost"] or {}
            if s is None or (part == "eval" and name == "lime"):
                continue
            plaus = s.get("plausibility")
            agree = f"{100 * plaus['agreement']:.1f} % ({plaus['words']})" if plaus else "-"
            cost = f"{c['calls']:,.1f} | {c['ms_batched']:,.1f}" if c else "- | -"
            lines.append(
                f"| {name} | {_mean_se(s, 'comprehensiveness')} | {_mean_se(s, 'sufficiency')} "
                f"| {agree} | {cost} |"
            )
        if part == "lime_subset" and report["methods"].get("lime"):
            lines += ["", "Minus LIME on the same sentences (mean ± standard error):", ""]
            for name in METHODS:
                s = report["methods"][name][part]
                lines.append(
                    f"- {name}: comprehensiveness {_mean_se(s, 'comprehensiveness_minus_lime')}"
                    f", sufficiency {_mean_se(s, 'sufficiency_minus_lime')}"
                )
    lines += ["", "One sentence alone (median) against one `embed` of its variants:", ""]
    for name, m in report["methods"].items():
        if (c := m["cost"] or {}).get("sentences"):
            lines.append(
                f"- {name}: {c['explain_ms']:.1f} ms, embed {c['embed_ms']:.1f} ms: "
                f"{c['explain_over_embed']:.2f}x the encode ({c['sentences']} sentences)"
            )
    lines += ["", "Targets for the default:", ""]
    lines += [f"- {name}: {ok}" for name, ok in report["targets"].items()]
    return "\n".join(lines) + "\n"


def _mean_se(summary: dict[str, Any], name: str) -> str:
    """A measure of a summary as "mean ± standard error"."""
    return f"{summary[name]:.4f} ± {summary[f'{name}_se']:.4f}"


def main() -> None:
    """Command line: the explanation study for a config's trained classifier."""
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--model", type=Path, help="model folder (default: models/<run>)")
    parser.add_argument("--engine", default="auto", choices=("auto", "onnx", "torch"))
    parser.add_argument("--sentences", type=int, help="first N eval sentences (default: all)")
    parser.add_argument("--lime", type=int, default=100, help="sentences LIME explains (100)")
    parser.add_argument("--lime-samples", type=int, default=5000, help="LIME's samples (5000)")
    parser.add_argument("--timed", type=int, default=10, help="sentences timed alone (10)")
    parser.add_argument("--glue", type=Path, default=GLUE_TRAIN, help="GLUE SST-2 train.tsv")
    args = parser.parse_args()
    config = cli.config_from_args(args)
    explain_study(
        config, args.model, args.engine, args.sentences, args.lime, args.lime_samples, args.timed,
        glue=args.glue,
    )  # fmt: skip


if __name__ == "__main__":
    cli.run(main)
