"""Learning curves: accuracy against the number of labeled sentences per class, on cached features.

    make curve CONFIG=configs/sst2-minilm.yaml DATA=../shared/data/sst2-sentences
    make curve CONFIGS=configs/sst2-minilm.yaml,configs/x.yaml DATA=DIR SIZES=8,64,all SEEDS=10

For each size n (sentences per class) and seed, a stratified draw from train: each seed shuffles
each class once, and a draw takes the first n of every class (all of a smaller one), so a smaller
draw is a prefix of a larger one. The classifier is train's (`logistic_regression_cv`, C by
``train.cv``-fold CV over ``train.cs``) when every class of the draw has at least 2 x ``train.cv``
sentences; below that, C is fixed at `FIXED_C`. Each fit is scored on the eval split, and on the
test split when it is labeled. A draw that holds all of train (the ``all`` size, or n at least the
largest class) is the same for every seed, so it is fitted once and its score stands for each
seed. Features are built as ``make features`` does, or found in its cache; nothing is encoded
twice. Fits run in parallel, one per core; the numbers do not depend on that.

Writes ``reports/curve/<run>.json``, ``.md`` and ``.png`` (a line per config, log x-axis).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from scipy import stats
from sklearn.base import clone

from pipeline import PipelineError, cli, plots
from pipeline.config import Config, load_config, to_dict
from pipeline.features import FEATURES_ROOT, build_features, load_arrays
from pipeline.io import read_json, write_json, write_text
from pipeline.progress import progress_bar
from pipeline.report import REPORTS_ROOT
from pipeline.train import logistic_regression_cv

log = logging.getLogger(__name__)

CURVE_ROOT = REPORTS_ROOT / "curve"
SIZES = "8,16,32,64,128,256,512,1024,all"
FIXED_C = 1.0  # too few sentences to cross-validate: scikit-learn's default C, as MTEB uses


def draw(y: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Row indices of the first `n` sentences of every class in the seed's shuffle (None: all)."""
    if n is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(np.flatnonzero(y == k))[:n] for k in np.unique(y)])


def fit_and_score(
    config: Config, x: np.ndarray, y: np.ndarray, rows: np.ndarray, scored: dict[str, tuple]
) -> dict[str, Any]:
    """Fit on `rows` (C by CV when every class has 2 x train.cv rows), score each scored split."""
    search = logistic_regression_cv(config).set_params(n_jobs=1)
    counts = np.bincount(y[rows])
    if counts[counts > 0].min() >= 2 * config.train.cv:
        model = search.fit(x[rows], y[rows])
        c = model.best_params_["logisticregression__C"]
    else:
        c = FIXED_C
        model = clone(search.estimator).set_params(logisticregression__C=c).fit(x[rows], y[rows])
    return {"C": c, **{role: float(model.score(*xy)) for role, xy in scored.items()}}


def config_curve(
    config: Config, sizes: list[int | None], seeds: int, features_root: Path = FEATURES_ROOT
) -> dict[str, Any]:
    """Every size x seed of one config: scores per seed, mean, std and 95 % interval per size."""
    started = time.perf_counter()
    folder = build_features(config, features_root)
    meta = read_json(folder / "meta.json")
    if "eval" not in meta["splits"]:
        raise PipelineError(
            f"{config.run}: data.protocol={config.data.protocol} has no eval split to score a "
            'curve on; hold some of train out with SET="data.protocol=holdout"'
        )
    x, y = load_arrays(folder, "train")
    roles = [r for r in ("eval", "test") if meta["splits"].get(r, {}).get("labeled")]
    scored = {role: load_arrays(folder, role) for role in roles}
    largest = int(np.bincount(y).max())

    def job(n: int | None, seed: int) -> tuple[int | None, int | None]:
        """A draw's key; (None, None) for the one that holds all of train, whatever the seed."""
        return (None, None) if n is None or n >= largest else (n, seed)

    jobs = {
        key: draw(y, key[0], key[1] or 0)
        for key in {job(n, s) for n in sizes for s in range(seeds)}
    }
    order = sorted(jobs, key=lambda key: -len(jobs[key]))  # the longest fits first
    results = Parallel(n_jobs=-1, return_as="generator")(
        delayed(fit_and_score)(config, x, y, jobs[key], scored) for key in order
    )
    fits = progress_bar(results, total=len(order), desc=config.run, unit="fit")
    done = dict(zip(order, fits, strict=True))
    rows = []
    for n in sizes:
        per_seed = [done[job(n, seed)] for seed in range(seeds)]
        row = {"n_per_class": "all" if n is None else n, "n_train": len(jobs[job(n, 0)])}
        row["C"] = [r["C"] for r in per_seed]
        for role in roles:
            prefix = "" if role == "eval" else "test_"
            row.update(summary([r[role] for r in per_seed], prefix))
        rows.append(row)
    return {
        "run": config.run,
        "encoder": to_dict(config.encoder),
        "data": config.data.dir or config.data.dataset,
        "features": folder.name,
        "labels": meta["labels"],
        "class_counts": np.bincount(y, minlength=len(meta["labels"])).tolist(),
        "scored": roles,
        "sizes": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }


def summary(scores: list[float], prefix: str = "") -> dict[str, Any]:
    """Per-seed scores, their mean, sample std and the 95 % t-interval of the mean."""
    mean, std = float(np.mean(scores)), float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
    half = float(stats.t.ppf(0.975, len(scores) - 1) * std / np.sqrt(len(scores))) if std else 0.0
    return {
        f"{prefix}scores": scores,
        f"{prefix}mean": mean,
        f"{prefix}std": std,
        f"{prefix}ci95": [mean - half, mean + half],
    }


def run_curve(
    configs: list[Config],
    sizes: list[int | None],
    seeds: int,
    name: str,
    features_root: Path = FEATURES_ROOT,
    out_root: Path = CURVE_ROOT,
) -> dict[str, Any]:
    """The curves of every config; write ``<out_root>/<name>.json``, ``.md`` and ``.png``."""
    result = {
        "run": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seeds": seeds,
        "fixed_C": FIXED_C,
        "interval": "95 % t-interval of the mean over seeds",
        "curves": [config_curve(config, sizes, seeds, features_root) for config in configs],
    }
    write_json(out_root / f"{name}.json", result)
    write_text(out_root / f"{name}.md", markdown(result))
    plots.curve(result["curves"], out_root / f"{name}.png", name)
    print(markdown(result))
    log.info("curve: wrote %s.{json,md,png}", out_root / name)
    return result


def markdown(result: dict[str, Any]) -> str:
    """A table per config: accuracy (%) per size, mean ± std and the interval, test beside."""
    lines = [f"# Learning curve: {result['run']}", ""]
    for curve in result["curves"]:
        test = "test" in curve["scored"]
        lines += [
            f"## {curve['run']} ({curve['encoder']['name']}, {curve['data']})",
            "",
            f"Train classes {dict(zip(curve['labels'], curve['class_counts'], strict=True))}; "
            f"features `{curve['features']}`; {result['seeds']} seeds; {curve['seconds']} s.",
            "",
            "| n per class | n train | eval accuracy (%) | 95 % interval | C |"
            + (" test accuracy (%) |" if test else ""),
            "|---:|---:|---:|---|---|" + ("---:|" if test else ""),
        ]
        for row in curve["sizes"]:
            cs = sorted(set(row["C"]))
            lines.append(
                f"| {row['n_per_class']} | {row['n_train']:,} | {_pct(row, '')} "
                f"| {100 * row['ci95'][0]:.2f} to {100 * row['ci95'][1]:.2f} "
                f"| {', '.join(f'{c:g}' for c in cs)} |"
                + (f" {_pct(row, 'test_')} |" if test else "")
            )
        lines.append("")
    lines.append(
        f"Mean ± std over seeds; C by CV where every class has 2 x train.cv sentences, else "
        f"{result['fixed_C']:g}. {result['interval']}."
    )
    return "\n".join(lines) + "\n"


def _pct(row: dict[str, Any], prefix: str) -> str:
    return f"{100 * row[prefix + 'mean']:.2f} ± {100 * row[prefix + 'std']:.2f}"


def parse_sizes(text: str) -> list[int | None]:
    """``8,16,all`` -> [8, 16, None]; each a positive integer or ``all``."""
    sizes = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        if item == "all":
            sizes.append(None)
        elif item.isdigit() and int(item) > 0:
            sizes.append(int(item))
        else:
            raise PipelineError(f"SIZES: {item!r} is not a positive number of sentences or 'all'")
    if not sizes:
        raise PipelineError("SIZES is empty; give sizes like 8,16,32,all")
    return sizes


def main() -> None:
    """Command line: the learning curve of one config, or of several overlaid."""
    parser = cli.stage_parser(__doc__)
    parser.add_argument(
        "--configs", help="comma-separated configs to overlay (instead of --config)"
    )
    parser.add_argument("--sizes", default=SIZES, help=f"sentences per class (default: {SIZES})")
    parser.add_argument("--seeds", type=int, default=10, help="draws per size (default: 10)")
    args = parser.parse_args()
    if args.seeds < 1:
        raise PipelineError(f"SEEDS must be at least 1, got {args.seeds}")
    configs = []
    for path in (args.configs or args.config).split(","):
        config = load_config(path.strip(), args.set)
        config.data.dir = args.data or config.data.dir
        configs.append(config)
    name = "-vs-".join(config.run for config in configs)
    name += f"-{Path(args.data).name}" if args.data else ""
    run_curve(configs, parse_sizes(args.sizes), args.seeds, name)


if __name__ == "__main__":
    cli.run(main)
