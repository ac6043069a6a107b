"""SentEval's classification table for one encoder config: every task folder found under DATA.

    make suite CONFIG=configs/sst2-minilm.yaml DATA=../shared/data/suite
    python -m pipeline.studies.suite --config configs/sst2-minilm.yaml --data ../shared/data/suite

A task is a small config in ``configs/suite/`` (its data section: class names, protocol, hub
source). It runs when its folder, ``DATA/<task>`` or the ``data.dir`` its config names (relative
to DATA), has a train file; local task files have ``sentence`` and ``label`` columns. The encoder
section comes from CONFIG. Features are built and cached as ``make features`` does (a rerun is a
cache hit), then each task is scored three ways: with SentEval's protocol
(`pipeline.studies.senteval`, the numbers of the published table), with the pipeline's own (C by
cross-validation on train over ``train.cs``, ``train.max_iter`` iterations, as ``make train
evaluate`` would) and with MTEB's few-shot one (`pipeline.mteb`: 10 fits on 8 sentences per
label, train in file order); both from `pipeline.protocols`. Writes
``reports/suite/<run>.json`` and ``.md``, and ``reports/suite/index.md`` with a row per run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from pipeline import PipelineError, cli
from pipeline.config import Config, DataConfig, load_config
from pipeline.data.splits import load_splits
from pipeline.data.tables import find_split_file
from pipeline.features import FEATURES_ROOT, build_features, load_arrays
from pipeline.io import read_json, write_json, write_text
from pipeline.protocols import PROTOCOLS, Arrays
from pipeline.report import REPORTS_ROOT
from pipeline.studies import senteval
from pipeline.train import logistic_regression_cv

log = logging.getLogger(__name__)

TASKS_DIR = Path("configs/suite")
SUITE_ROOT = REPORTS_ROOT / "suite"
TABLE_ORDER = ("mr", "cr", "subj", "mpqa", "sst2", "sst5", "trec")  # SentEval's column order
TITLES = {"mr": "MR", "cr": "CR", "subj": "SUBJ", "mpqa": "MPQA", "sst2": "SST-2", "sst5": "SST-5"}


def find_tasks(data_root: Path, tasks_dir: Path = TASKS_DIR) -> dict[str, DataConfig]:
    """The task configs in `tasks_dir` whose folder under `data_root` has a train file."""
    found = {}
    for path in sorted(tasks_dir.glob("*.yaml"), key=lambda p: _table_position(p.stem)):
        data = load_config(path).data
        folder = data_root / (data.dir or path.stem)
        if not folder.is_dir() or find_split_file(folder, data.train_split, required=False) is None:
            log.info("suite: %s: no train file in %s; skipped", path.stem, folder)
            continue
        found[path.stem] = dataclasses.replace(
            data, dir=str(folder), text_column=None, label_column="label"
        )
    if not found:
        raise PipelineError(
            f"no task folders under {data_root} (looked for {', '.join(TABLE_ORDER)} as named by "
            f"{tasks_dir}/*.yaml, each with a train file)"
        )
    return found


def run_task(config: Config, features_root: Path = FEATURES_ROOT) -> dict[str, Any]:
    """Features for one task (cached), then SentEval's protocol and the pipeline's own."""
    started = time.perf_counter()
    splits = load_splits(config.data)
    folder = build_features(config, features_root, splits=splits)
    encoded = time.perf_counter()
    train = load_arrays(folder, "train")
    order = senteval.senteval_order(splits["train"].texts, train[1])  # SentEval's folds follow it
    x, y = train[0][order], train[1][order]
    dev = load_arrays(folder, "eval") if "eval" in splits else None
    test = load_arrays(folder, "test") if _labeled(splits, "test") else None
    nested = config.data.protocol == "kfold" and not config.data.test_split
    if config.data.protocol == "split":
        ours = senteval.split(x, y, *dev, *(test or (None, None)))
    elif nested:  # MR, CR, SUBJ, MPQA: no test set by design
        ours = senteval.inner_kfold(x, y, config.data.folds)
    elif config.data.protocol == "kfold":  # TREC: C by CV on train, then its test set
        ours = senteval.kfold(x, y, *(test or (None, None)), config.data.folds)
    else:
        raise PipelineError(f"SentEval has no {config.data.protocol!r} protocol (split or kfold)")
    scored = time.perf_counter()
    return {
        "protocol": config.data.protocol,
        "n": {role: len(split) for role, split in splits.items()},
        "classes": len(splits["train"].names),
        "senteval": dataclasses.asdict(ours),
        "pipeline": pipeline_protocol(config, (x, y), dev, test, nested),
        "features": folder.name,
        "seconds": {
            "features": round(encoded - started, 1),
            "senteval": round(scored - encoded, 1),
            "pipeline": round(time.perf_counter() - scored, 1),
        },
        "mteb": mteb_protocol(config, train, dev, test),  # ten small fits: not timed
    }


def pipeline_protocol(
    config: Config, train: Arrays, dev: Arrays | None, test: Arrays | None, nested: bool
) -> dict[str, float | None]:
    """Accuracy (%) by the task's protocol from `pipeline.protocols`, as ``make train evaluate``
    runs it: C by CV on train, scored on dev (none: the CV accuracy) and test; `nested`: the mean
    over the outer folds of kfold's nested CV, as test."""
    protocol = PROTOCOLS[config.data.protocol]
    if nested:
        return {"dev": None, "test": _pct(protocol(config, train, None).details["folds"]["mean"])}
    model = logistic_regression_cv(config).fit(*train)

    def score(held: Arrays) -> float:
        return _pct(protocol(config, train, held, model).accuracy)

    return {
        "dev": _pct(model.best_score_) if dev is None else score(dev),
        "test": None if test is None else score(test),
    }


def mteb_protocol(
    config: Config, train: Arrays, dev: Arrays | None, test: Arrays | None
) -> dict[str, float | str]:
    """Accuracy (%) by MTEB's protocol (`pipeline.protocols`), train in file order -> test, else
    dev; with neither, MTEB's 5-fold cross-validation of train."""
    on = "test" if test is not None else "dev" if dev is not None else "5-fold CV"
    held = {"test": test, "dev": dev}.get(on)
    return {"accuracy": _pct(PROTOCOLS["mteb"](config, train, held).accuracy), "scored": on}


def run_suite(
    config: Config,
    data_root: Path,
    tasks_dir: Path = TASKS_DIR,
    features_root: Path = FEATURES_ROOT,
    out_root: Path = SUITE_ROOT,
) -> dict[str, Any]:
    """Every task found under `data_root` with `config`'s encoder; write and return the row."""
    started = time.perf_counter()
    tasks = {}
    for name, data in find_tasks(data_root, tasks_dir).items():
        log.info("suite: %s (%s)", name, data.dir)
        task_config = dataclasses.replace(config, run=f"{config.run}-{name}", data=data)
        tasks[name] = run_task(task_config, features_root)
        log.info("suite: %s: %s", name, _cell(tasks[name]["senteval"]))
    row = {
        "run": config.run,
        "encoder": dataclasses.asdict(config.encoder),
        "tasks": tasks,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(out_root / f"{config.run}.json", row)
    write_text(out_root / f"{config.run}.md", markdown([row], details=True))
    rows = [read_json(path) for path in sorted(out_root.glob("*.json"))]
    write_text(out_root / "index.md", markdown(rows))
    print(markdown([row]))
    return row


def markdown(rows: list[dict[str, Any]], details: bool = False) -> str:
    """The table (a row per encoder config, a column per task) and, with `details`, per task."""
    names = sorted({name for row in rows for name in row["tasks"]}, key=_table_position)
    lines = [
        "| encoder config | " + " | ".join(TITLES.get(n, n.upper()) for n in names) + " | wall |",
        "|---|" + "---:|" * (len(names) + 1),
        *(
            f"| {row['run']} | "
            + " | ".join(
                _cell(row["tasks"][n]["senteval"]) if n in row["tasks"] else "" for n in names
            )
            + f" | {row['seconds']:.0f} s |"
            for row in rows
        ),
        "",
        "Accuracy (%) by SentEval's protocol: test, or the mean over 10 outer folds for MR, CR, "
        "SUBJ and MPQA; (dev) marks a task whose test set was absent.",
    ]
    for row in rows if details else []:
        lines += [
            "",
            f"## {row['run']}: every number",
            "",
            "| task | protocol | n | SentEval dev | SentEval test | C | pipeline dev "
            "| pipeline test | MTEB | features s | SentEval s | pipeline s |",
            "|---|---|---|---:|---:|---|---:|---:|---|---:|---:|---:|",
        ]
        for name, task in row["tasks"].items():
            ours, own, sec = task["senteval"], task["pipeline"], task["seconds"]
            std = f" ± {ours['test_std']}" if ours["test_std"] is not None else ""
            lines.append(
                f"| {name} | {task['protocol']} | {_counts(task['n'])} | {ours['dev']} "
                f"| {_num(ours['test'])}{std} | {', '.join(f'{c:g}' for c in ours['cs'])} "
                f"| {_num(own['dev'])} | {_num(own['test'])} "
                f"| {task['mteb']['accuracy']:.2f} ({task['mteb']['scored']}) | {sec['features']} "
                f"| {sec['senteval']} | {sec['pipeline']} |"
            )
    return "\n".join(lines) + "\n"


def _labeled(splits: dict, role: str) -> bool:
    return role in splits and splits[role].labels is not None


def _cell(result: dict[str, Any]) -> str:
    return f"{result['test']:.2f}" if result["test"] is not None else f"{result['dev']:.2f} (dev)"


def _pct(fraction: float) -> float:
    return round(100 * float(fraction), 2)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _counts(n: dict[str, int]) -> str:
    return " / ".join(f"{count:,}" for count in n.values())


def _table_position(name: str) -> tuple[int, str]:
    return (TABLE_ORDER.index(name) if name in TABLE_ORDER else len(TABLE_ORDER), name)


def main() -> None:
    """Command line: run the suite for an encoder config."""
    parser = cli.stage_parser(__doc__)
    parser.add_argument(
        "--tasks", type=Path, default=TASKS_DIR, help=f"task configs (default: {TASKS_DIR})"
    )
    args = parser.parse_args()
    if not args.data:
        raise PipelineError("give --data DIR (DATA=DIR with make): the folder of task folders")
    data_root = Path(args.data)
    args.data = None  # DATA names the task folders here, not one data set
    run_suite(cli.config_from_args(args), data_root, args.tasks)


if __name__ == "__main__":
    cli.run(main)
