"""Active-learning study: how many labels each query strategy needs, against random picking.

    make al-study CONFIG=configs/sst2-minilm.yaml DATA=../shared/data/sst2-sentences
    make al-study CONFIG=... DATA=... SEEDS=10 BUDGET=1000 STRATEGIES=random,margin,badge

The gold labels of the train split play the labeler. From zero labels, each strategy picks
batches of 10 (`learner.next_batch`: the diversity start while labels are few, the picking
classifier at `PICK_C`) up to the budget (default 500 per class). At each scored size the
labels so far are fitted as `make curve` fits a draw (C by CV over train.cs once every class has
2 x train.cv labels, else C=1) and scored on the eval split (and a labeled test split). Every
strategy runs with every seed; the seed drives k-means, BADGE's sampling and random's draws.

Writes reports/al/<run>.json (per strategy: ``labels``, the sizes; ``mean``; ``scores``, a list
per size with a score per seed), .md and .png, with `make curve`'s random curve (stratified draws,
per-class sizes up to the budget) on the same axes, and the labels each strategy needs to reach
random's accuracy at the largest budget, and to come within 1 point of the all-data accuracy.
"""

from __future__ import annotations

import logging
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed

from pipeline import PipelineError, cli
from pipeline.config import Config, to_dict
from pipeline.features import FEATURES_ROOT, build_features, load_arrays
from pipeline.io import read_json, write_json, write_text
from pipeline.learner import PICK_C, next_batch
from pipeline.progress import progress_bar
from pipeline.query import DEFAULT, STRATEGIES, check_strategy
from pipeline.report import REPORTS_ROOT
from pipeline.studies.active_plot import study_figure
from pipeline.studies.curve import config_curve, fit_and_score, summary

log = logging.getLogger(__name__)

AL_ROOT = REPORTS_ROOT / "al"
BATCH = 10
PER_CLASS = 500  # the default budget: 500 labels per class (1,000 for two)


GRID = (1, 2, 3, 4, 5, 7, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100)  # in batches, then x 2 ...


def sizes(budget: int, batch: int = BATCH) -> list[int]:
    """The scored sizes: 1, 2, 3, 4, 5, 7, 10, 15 ... 100 batches, doubling past that, and the
    budget (for batches of 10: 10 ... 50, 70, 100, 150 ... 1,000)."""
    grid, scale = [], 1
    while not grid or grid[-1] < budget:
        grid += [
            int(step * batch * scale) for step in GRID if step * batch * scale > (grid or [0])[-1]
        ]
        scale *= 2
    return sorted({n for n in grid if n < budget and n % batch == 0} | {budget})


def simulate(
    strategy: str,
    seed: int,
    config: Config,
    x: np.ndarray,
    y: np.ndarray,
    scored: dict[str, tuple],
    budget: int,
    batch: int = BATCH,
) -> dict[str, Any]:
    """One labeler from zero labels: the picks and the scores at each scored size."""
    n_classes = int(y.max()) + 1
    taken = np.zeros(len(y), dtype=bool)
    rows: list[int] = []
    wanted = set(sizes(budget, batch))
    results: dict[int, dict[str, Any]] = {}
    steps = 0
    while len(rows) < budget and not taken.all():
        labeled = np.asarray(rows, dtype=np.int64)
        picks, _ = next_batch(
            strategy, x, taken, (x[labeled], y[labeled]), min(batch, budget - len(rows)),
            n_classes, config, seed=seed * 100_003 + steps,
        )  # fmt: skip
        if taken[picks.rows].any() or len(set(picks.rows.tolist())) < len(picks.rows):
            raise PipelineError(f"{strategy} picked a text twice")  # a bug, never a user error
        taken[picks.rows] = True
        rows += picks.rows.tolist()
        steps += 1
        if len(rows) in wanted:
            results[len(rows)] = fit_and_score(config, x, y, np.asarray(rows), scored)
    return {"strategy": strategy, "seed": seed, "rows": rows, "results": results}


def run_study(
    config: Config,
    strategies: list[str],
    seeds: int,
    budget: int | None,
    name: str,
    features_root: Path = FEATURES_ROOT,
    out_root: Path = AL_ROOT,
) -> dict[str, Any]:
    """Every strategy x seed, make curve's random curve, the labels needed; write the report."""
    started = time.perf_counter()
    folder = build_features(config, features_root)
    meta = read_json(folder / "meta.json")
    if "eval" not in meta["splits"]:
        raise PipelineError(f"{config.run}: the study scores on an eval split; this data has none")
    x, y = load_arrays(folder, "train")
    names = meta["labels"]
    budget = budget or PER_CLASS * len(names)
    if budget > len(y):
        raise PipelineError(f"BUDGET={budget} is more than the {len(y)} train sentences")
    roles = [r for r in ("eval", "test") if meta["splits"].get(r, {}).get("labeled")]
    scored = {role: load_arrays(folder, role) for role in roles}
    jobs = [(s, seed) for seed in range(seeds) for s in strategies]
    runs = Parallel(n_jobs=-1, return_as="generator")(
        delayed(simulate)(s, seed, config, x, y, scored, budget) for s, seed in jobs
    )
    done = list(progress_bar(runs, total=len(jobs), desc=config.run, unit="run"))
    labels = sizes(budget)
    table = {}
    for strategy in strategies:
        mine = sorted((r for r in done if r["strategy"] == strategy), key=lambda r: r["seed"])
        per_size = [[r["results"][n]["eval"] for r in mine] for n in labels]
        entry = {"labels": labels, "mean": [float(np.mean(s)) for s in per_size]}
        entry["scores"] = per_size
        entry["ci95"] = [summary(s)["ci95"] for s in per_size]
        entry["C"] = [[r["results"][n]["C"] for r in mine] for n in labels]
        if "test" in roles:
            entry["test_mean"] = [
                float(np.mean([r["results"][n]["test"] for r in mine])) for n in labels
            ]
        table[strategy] = entry
    per_class = [n for n in (8, 16, 32, 64, 128, 256, 512, 1024) if n * len(names) <= budget]
    random_curve = config_curve(config, [*per_class, None], seeds, features_root)
    everything = random_curve["sizes"][-1]["mean"]
    result = {
        "run": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "encoder": to_dict(config.encoder),
        "data": config.data.dir or config.data.dataset,
        "features": folder.name,
        "labels_names": names,
        "class_counts": np.bincount(y, minlength=len(names)).tolist(),
        "seeds": seeds,
        "batch": BATCH,
        "budget": budget,
        "pick_C": PICK_C,
        "default": DEFAULT,
        "interval": "95 % t-interval of the mean over seeds",
        "strategies": table,
        "random_curve": random_curve["sizes"],
        "all_data": everything,
        "needs": needs(table, everything),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(out_root / f"{name}.json", result)
    write_text(out_root / f"{name}.md", markdown(result))
    study_figure(result, out_root / f"{name}.png")
    print(markdown(result))
    log.info("al-study: wrote %s.{json,md,png}", out_root / name)
    return result


def first_reaching(labels: list[int], mean: list[float], target: float) -> int | None:
    """The smallest size whose mean reaches `target`, or None."""
    return next((n for n, m in zip(labels, mean, strict=True) if m >= target - 1e-12), None)


def needs(table: dict[str, dict], everything: float) -> dict[str, dict[str, Any]]:
    """Per strategy: labels to reach random's accuracy at the largest budget and to come within
    1 point of all the data; how far it stays below random at its worst size; and, where a
    target is not reached, by how much it missed."""
    if "random" not in table:
        return {}
    random = table["random"]["mean"]
    target = random[-1]
    out = {}
    for strategy, entry in table.items():
        mean, labels = entry["mean"], entry["labels"]
        gaps = np.asarray(mean) - np.asarray(random)
        out[strategy] = {
            "reaches_random_at_budget": first_reaching(labels, mean, target),
            "random_at_budget": target,
            "missed_random_by": max(0.0, target - max(mean)),
            "within_1_point_of_all_data": first_reaching(labels, mean, everything - 0.01),
            "missed_all_data_by": max(0.0, everything - 0.01 - max(mean)),
            "worst_gap_to_random": float(gaps.min()),
            "worst_gap_at": int(labels[int(gaps.argmin())]),
            "sizes_below_random": int((gaps < 0).sum()),
        }
    return out


def markdown(result: dict[str, Any]) -> str:
    """Eval accuracy (%) per size and strategy, then the labels each needs."""
    table, names = result["strategies"], list(result["strategies"])
    lines = [
        f"# Active learning: {result['run']}",
        "",
        f"{result['encoder']['name']} on {result['data']}; train classes "
        f"{dict(zip(result['labels_names'], result['class_counts'], strict=True))}; "
        f"{result['seeds']} seeds, batches of {result['batch']}, picking C={result['pick_C']}; "
        f"{result['seconds']} s. Eval accuracy (%), mean over seeds.",
        "",
        "| labels | " + " | ".join(names) + " |",
        "|---:|" + "---:|" * len(names),
    ]
    for i, n in enumerate(table[names[0]]["labels"]):
        cells = [f"{100 * table[s]['mean'][i]:.2f}" for s in names]
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    everything = f"All {sum(result['class_counts']):,} train sentences: "
    everything += f"{100 * result['all_data']:.2f} %. `make curve`'s random draws (per class):"
    lines += ["", everything, ""]
    lines += ["| labels | accuracy (%) |", "|---:|---:|"]
    for row in result["random_curve"]:
        lines.append(f"| {row['n_train']:,} | {100 * row['mean']:.2f} ± {100 * row['std']:.2f} |")
    if result["needs"]:
        lines += [
            "",
            "| strategy | labels to reach random at the budget | within 1 point of all data "
            "| worst gap to random (points, at) |",
            "|---|---|---|---|",
        ]
        for s, need in result["needs"].items():
            reach = need["reaches_random_at_budget"]
            close = need["within_1_point_of_all_data"]
            lines.append(
                f"| {s} | {reach or 'missed by %.2f pts' % (100 * need['missed_random_by'])} "
                f"| {close or 'missed by %.2f pts' % (100 * need['missed_all_data_by'])} "
                f"| {100 * need['worst_gap_to_random']:+.2f} at {need['worst_gap_at']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command line: the active-learning study of one config."""
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--seeds", type=int, default=10, help="labelers per strategy (10)")
    parser.add_argument("--budget", type=int, help="labels at the end (default 500 per class)")
    parser.add_argument(
        "--strategies", default=",".join(STRATEGIES), help="comma-separated (default: all)"
    )
    args = parser.parse_args()
    if args.seeds < 2:
        raise PipelineError(f"SEEDS must be at least 2 (for an interval), got {args.seeds}")
    strategies = [check_strategy(s.strip()) for s in args.strategies.split(",") if s.strip()]
    if "random" not in strategies:
        strategies.insert(0, "random")
    config = cli.config_from_args(args)
    name = config.run + (f"-{Path(args.data).name}" if args.data else "")
    run_study(config, strategies, args.seeds, args.budget, name)


if __name__ == "__main__":
    cli.run(main)
