"""make pick: the next N texts of a pool to label, as a CSV to fill in a spreadsheet.

    make pick POOL=texts.txt N=50 [LABELED=labels.csv] [STRATEGY=badge] [CONFIG=...] [OUT=picks.csv]

Writes OUT (default picks.csv) with the columns ``text``, ``label`` (empty: fill it in),
``guess`` (the classifier's label; empty before it has two classes) and ``score`` (the
strategy's score: uncertainty, gradient norm, or for the diversity start the share of the pool
the text stands for), most wanted first. Give the filled file back as LABELED: its labeled rows
train the classifier, and no text in it (labeled, left empty, or ``skip``) is picked again. Any
labels file works as LABELED, make label's OUT too. Without LABELED, or while labels are few,
the picks are the diversity start (k-means). The pool is encoded once and cached
(`pipeline.pool`).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from pipeline import PipelineError, cli
from pipeline.config import Config
from pipeline.features import FEATURES_ROOT
from pipeline.io import atomic_path
from pipeline.learner import next_batch
from pipeline.pool import Pool, encode_texts, load_pool, read_answers
from pipeline.query import DEFAULT, FEW_PER_CLASS, STRATEGIES, Picks, check_strategy

log = logging.getLogger(__name__)

COLUMNS = ("text", "label", "guess", "score")


def labeled_vectors(
    pool: Pool, config: Config, texts: list[str], labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, class ids) of labeled texts: the pool's rows, and texts outside it encoded."""
    rows = pool.rows(texts)
    outside = [text for text, row in zip(texts, rows, strict=True) if row < 0]
    x = np.asarray(pool.x[rows[rows >= 0]])
    if outside:
        log.info("pick: encoding %d labeled texts that are not in the pool", len(outside))
        x = np.vstack([x, encode_texts(config, outside)])
        labels = np.concatenate([labels[rows >= 0], labels[rows < 0]])
    return x.astype(np.float32, copy=False), labels


def pick(
    pool_path: Path,
    n: int,
    config: Config,
    labeled_path: Path | None = None,
    strategy: str = DEFAULT,
    out: Path = Path("picks.csv"),
    root: Path = FEATURES_ROOT,
    seed: int | None = None,
) -> Picks:
    """Pick `n` texts of the pool at `pool_path` and write them to `out`; return the picks."""
    check_strategy(strategy)
    if n < 1:
        raise PipelineError(f"N must be at least 1, got {n}")
    if labeled_path is not None and Path(out).resolve() == Path(labeled_path).resolve():
        raise PipelineError(f"OUT={out} is LABELED: writing picks there would lose your labels")
    names = list(config.data.labels) if config.data.labels else None
    answers = read_answers(labeled_path, names, config.data.text_column) if labeled_path else None
    pool = load_pool(pool_path, config, root)
    taken = np.zeros(len(pool), dtype=bool)
    x_labeled, y = np.zeros((0, pool.x.shape[1]), dtype=np.float32), np.zeros(0, dtype=np.int64)
    if answers is not None:
        names = answers.names
        rows = pool.rows(answers.texts)
        taken[rows[rows >= 0]] = True
        done = answers.labeled()
        texts = [t for t, keep in zip(answers.texts, done, strict=True) if keep]
        x_labeled, y = labeled_vectors(pool, config, texts, answers.labels[done])
    seed = config.data.seed if seed is None else seed
    picks, model = next_batch(
        strategy, pool.x, taken, (x_labeled, y), n, len(names or [0, 1]), config, seed
    )
    guesses = [""] * len(picks.rows)
    if model is not None:
        guesses = [names[k] for k in model.predict_proba(pool.x[picks.rows]).argmax(axis=1)]
    with atomic_path(Path(out)) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row, guess, score in zip(picks.rows, guesses, picks.scores, strict=True):
            writer.writerow([pool.texts[row], "", guess, f"{score:.6g}"])
    used = picks.strategy
    if picks.strategy != strategy:
        used += f" (labels are few; {strategy} once every class has {FEW_PER_CLASS})"
    print(f"pick: {len(picks.rows)} of {int((~taken).sum())} unlabeled texts by {used} -> {out}")
    return picks


def main() -> None:
    """Command line: pick the next texts to label."""
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--pool", type=Path, required=True, help="the pool file")
    parser.add_argument("--n", type=int, default=50, help="texts to pick (default: 50)")
    parser.add_argument("--labeled", type=Path, help="labels so far (a filled picks CSV, OUT...)")
    parser.add_argument(
        "--strategy", default=DEFAULT, help=f"{', '.join(STRATEGIES)} (default: {DEFAULT})"
    )
    parser.add_argument("--out", type=Path, default=Path("picks.csv"), help="(picks.csv)")
    parser.add_argument("--seed", type=int, help="for the random choices (default: data.seed)")
    args = parser.parse_args()
    config = cli.config_from_args(args)
    pick(args.pool, args.n, config, args.labeled, args.strategy, args.out, seed=args.seed)


if __name__ == "__main__":
    cli.run(main)
