"""The Markdown pages of runs: evaluate's ``report.md`` and table (`markdown_report`, `table`);
`make report` collects a run's artifacts into ``reports/<run>/index.md``, all runs into
``reports/index.md``.

The run page links every file (metrics.json, report.md, the figures, model.json, the features'
meta.json), states what made the numbers (encoder, pooling, layer, features, C and its CV grid,
extraction time, library versions) and includes the evaluation report itself.

    python -m pipeline.report --config configs/sst2-minilm.yaml --data ../shared/data/sst2-glue
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pipeline import PipelineError, cli
from pipeline.config import Config
from pipeline.features import FEATURES_ROOT
from pipeline.io import read_json, write_text
from pipeline.probe import MODELS_ROOT

log = logging.getLogger(__name__)

REPORTS_ROOT = Path("reports")
BINARY_METRICS = ("accuracy", "precision", "recall", "f1", "macro_f1", "roc_auc")
MULTICLASS_METRICS = ("accuracy", "macro_f1", "roc_auc")
BINARY = ("negative", "positive")  # the labels of a metrics.json from before K classes
TOP_WORDS = 3  # words per explained sentence, toward its predicted label and against it


def run_page(
    run: str,
    reports_root: Path = REPORTS_ROOT,
    models_root: Path = MODELS_ROOT,
    features_root: Path = FEATURES_ROOT,
) -> Path:
    """Write ``<reports_root>/<run>/index.md``; return its path."""
    folder = reports_root / run
    if not (folder / "metrics.json").is_file():
        raise PipelineError(f"no evaluation for run {run!r} in {folder}; run `make evaluate` first")
    metrics = read_json(folder / "metrics.json")
    model_json = models_root / run / "model.json"
    model = read_json(model_json)
    features_meta = features_root / metrics["features"] / "meta.json"
    features = read_json(features_meta) if features_meta.is_file() else {}

    def link(path: Path) -> str:
        return f"[{path.name}]({Path(os.path.relpath(path, folder)).as_posix()})"

    enc = model["encoder"]
    grid = ", ".join(f"C={c}: {score:.4f}" for c, score in model["cv_grid"].items())
    lines = [
        f"# {run}",
        "",
        f"- encoder `{enc['name']}` (weights sha256 {model['weights_sha256'][:12]}), "
        f"{enc['pooling']} pooling of layer {enc['layer']}, max_length {enc['max_length']}, "
        f"{enc['precision']}",
        f"- features `{metrics['features']}`: "
        + (f"{features['seconds']} s on {features['device']}; " if features else "not on disk; ")
        + ", ".join(
            f"{role} n={s['n']} ({s['truncated']} truncated)"
            for role, s in features.get("splits", {}).items()
        ),
        f"- logistic regression: C={model['C']:g} chosen by {model['cv_folds']}-fold CV ({grid}); "
        f"standardize={model['standardize']}; trained {model['created']}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in model['versions'].items())}",
        f"- files: {link(folder / 'metrics.json')}, {link(folder / 'report.md')}, "
        + ", ".join(link(folder / f) for f in metrics["figures"].values())
        + f", {link(model_json)}"
        + (f", {link(features_meta)}" if features else ""),
        "",
        *(folder / "report.md").read_text(encoding="utf-8").splitlines()[1:],
    ]
    write_text(folder / "index.md", "\n".join(lines) + "\n")
    return folder / "index.md"


def runs_page(reports_root: Path = REPORTS_ROOT) -> Path:
    """Write ``<reports_root>/index.md``: one row per evaluated run, best accuracy first."""
    rows: list[dict[str, Any]] = [read_json(p) for p in reports_root.glob("*/metrics.json")]
    rows.sort(key=lambda m: -m["classifier"]["accuracy"])

    def page(run: str) -> str:  # the run page where `make report` made one, else its report
        return (
            f"{run}/index.md" if (reports_root / run / "index.md").is_file() else f"{run}/report.md"
        )

    lines = [
        "# Runs",
        "",
        "| run | encoder | pooling | layer | classes | C | CV accuracy | accuracy | macro-F1 "
        "| ROC-AUC | n |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| [{m['run']}]({page(m['run'])}) | {m['encoder']} | {m['pooling']} | {m['layer']} "
            f"| {len(m.get('labels', BINARY))} | {m['C']:g} | {m['cv_accuracy']:.4f} "
            f"| {m['classifier']['accuracy']:.4f} | {fmt(m['classifier'].get('macro_f1'))} "
            f"| {fmt(m['classifier']['roc_auc'])} | {m['classifier']['n']} |"
            for m in rows
        ),
    ]
    write_text(reports_root / "index.md", "\n".join(lines) + "\n")
    return reports_root / "index.md"


def headline(metrics: dict[str, Any]) -> tuple[str, ...]:
    """The metrics worth a row in tables: binary ones for two classes, macro ones for K."""
    return BINARY_METRICS if len(metrics["labels"]) == 2 else MULTICLASS_METRICS


def table(metrics: dict[str, Any]) -> str:
    """A fixed-width table of classifier vs baseline (and on test, when there is one)."""
    parts = [("", metrics)] + ([("test ", metrics["test"])] if "test" in metrics else [])
    rows = [f"{'metric':<15} {'classifier':>10} {'baseline':>10}"]
    for prefix, part in parts:
        for key in (*headline(metrics), "n"):
            values = [part[m][key] for m in ("classifier", "most_frequent_baseline")]
            rows.append(f"{prefix + key:<15} " + " ".join(f"{fmt(v):>10}" for v in values))
    if "folds" in metrics:
        folds = metrics["folds"]
        rows.append(f"{'fold accuracy':<15} {folds['mean']:.4f} ± {folds['std']:.4f}")
    return "\n".join(rows)


def markdown_report(metrics: dict[str, Any]) -> str:
    """A short human-readable report of one evaluation."""
    names = metrics["labels"]
    lines = [
        f"# {metrics['run']}: evaluation",
        "",
        f"Encoder `{metrics['encoder']}`, {metrics['pooling']} pooling of layer "
        f"{metrics['layer']}, logistic regression with C={metrics['C']:g} "
        f"(CV accuracy {metrics['cv_accuracy']:.4f}); classes: {', '.join(names)}.",
        f"Protocol `{metrics['protocol']}`, scored on {metrics['scored']}; features "
        f"`{metrics['features']}`; {metrics['created']}.",
    ]
    if "folds" in metrics:
        folds = metrics["folds"]
        lines += [
            "",
            f"Accuracy over {len(folds['accuracy'])} outer folds: {folds['mean']:.4f} "
            f"± {folds['std']:.4f} (" + ", ".join(f"{a:.4f}" for a in folds["accuracy"]) + ")",
        ]
    parts = [("", metrics)] + ([(" on test", metrics["test"])] if "test" in metrics else [])
    for title, part in parts:
        clf, base = part["classifier"], part["most_frequent_baseline"]
        lines += [
            "",
            f"## Scores{title} (n = {clf['n']})",
            "",
            "| metric | classifier | most-frequent baseline |",
            "|---|---:|---:|",
            *(f"| {key} | {fmt(clf[key])} | {fmt(base[key])} |" for key in headline(metrics)),
            "",
            "| class | precision | recall | F1 | n |",
            "|---|---:|---:|---:|---:|",
            *(
                f"| {c['label']} | {c['precision']:.4f} | {c['recall']:.4f} | {c['f1']:.4f} "
                f"| {c['n']} |"
                for c in clf["per_class"]
            ),
            "",
            "Confusion matrix (rows: true, columns: predicted)",
            "",
            "| | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names),
            *(
                f"| {name} | " + " | ".join(map(str, row)) + " |"
                for name, row in zip(names, clf["confusion_matrix"], strict=True)
            ),
        ]
    lines += [
        "",
        "## Accuracy by sentence length",
        "",
        "| words | n | accuracy |",
        "|---|---:|---:|",
        *(f"| {r['words']} | {r['n']} | {r['accuracy']:.4f} |" for r in metrics["by_length"]),
        "",
        "## Most confidently wrong",
        "",
        "| true label | predicted | p(predicted) | sentence |",
        "|---|---|---:|---|",
        *(
            f"| {w['label']} | {w['predicted']} | {w['p_wrong_label']:.3f} | {cell(w['text'])} |"
            for w in metrics["most_confidently_wrong"]
        ),
        *explained_lines(metrics["wrong_explained"], metrics["figures"]),
        "",
        *(f"![{name}]({file})" for name, file in metrics["figures"].items()),
        "",
    ]
    return "\n".join(lines)


def explained_lines(explained: dict[str, Any], figures: dict[str, str]) -> list[str]:
    """The explained wrong sentences: each one's strongest words toward its predicted label and
    against it, and a link to their figure; or why none were explained."""
    if not explained["sentences"]:
        return ["", f"No words explained: {explained['reason']}."]

    def strongest(words: list[dict], sign: int) -> str:
        found = sorted(
            (w for w in words if sign * w["weight"] > 0), key=lambda w: -abs(w["weight"])
        )
        return ", ".join(f"“{cell(w['word'])}” {w['weight']:+.2f}" for w in found[:TOP_WORDS])

    figure = figures["wrong_explained"]
    return [
        "",
        f"### The words that weigh most ({explained['method']})",
        "",
        "Each word's weight in the saved classifier's log-odds of the predicted label (+: toward "
        f"it); every word, coloured by its weight: [{figure}]({figure}).",
        "",
        "| true label | predicted | p(predicted) | toward it | against it | sentence |",
        "|---|---|---:|---|---|---|",
        *(
            f"| {s['label']} | {s['predicted']} | {s['probability']:.3f} "
            f"| {strongest(s['words'], 1)} | {strongest(s['words'], -1)} | {cell(s['text'])} |"
            for s in explained["sentences"]
        ),
    ]


def cell(text: str) -> str:
    """`text` for a Markdown table cell: its pipes escaped."""
    return text.replace("|", "&#124;")


def fmt(value: float | int | None) -> str:
    """4 decimals for a float, an int as it is, n/a for None."""
    if value is None:
        return "n/a"
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def main() -> None:
    """Command line: write the run page for a config, and the page of all runs."""
    config: Config = cli.config_from_args(cli.stage_parser(__doc__).parse_args())
    log.info("report: wrote %s and %s", run_page(config.run), runs_page())


if __name__ == "__main__":
    cli.run(main)
