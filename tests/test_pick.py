"""make pick: the next texts to label as a CSV, from the diversity start to a strategy's picks."""

import csv

import pytest
from conftest import NEGATIVE, POSITIVE, run_cli, sentences

from pipeline import PipelineError
from pipeline.config import load_config
from pipeline.pick import COLUMNS, pick


@pytest.fixture
def pool_file(workdir):
    """60 texts, one a line: a held-back pool."""
    path = workdir / "pool.txt"
    path.write_text("\n".join(POSITIVE + NEGATIVE + sentences(40)) + "\n", encoding="utf-8")
    return path


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_without_labels_the_picks_are_the_diversity_start(tiny_config, workdir, pool_file):
    done = run_cli(
        "-m", "pipeline.pick", "--config", str(tiny_config), "--pool", str(pool_file),
        "--n", "6", "--out", "picks.csv", cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "6 of 60 unlabeled texts by kmeans" in done.stdout
    rows = read_csv(workdir / "picks.csv")
    assert list(rows[0]) == list(COLUMNS) and len(rows) == 6
    assert len({row["text"] for row in rows}) == 6
    assert all(row["label"] == "" and row["guess"] == "" for row in rows)
    assert all(0 < float(row["score"]) <= 1 for row in rows)


def fill(rows, path, extra=()):
    """Label picked rows as the tiny data's sentiment says; write them back as a labels file."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for text, label in [*rows, *extra]:
            writer.writerow([text, label, "", ""])


def test_given_labels_back_it_picks_new_texts_with_a_guess_and_a_score(
    tiny_config, workdir, pool_file
):
    config = load_config(tiny_config)
    labeled = [(t, "positive") for t in POSITIVE[:6]] + [(t, "negative") for t in NEGATIVE[:6]]
    pending = [(POSITIVE[6], ""), (NEGATIVE[6], "skip")]  # picked, not labeled: never again
    outside = [("a sentence that is not in the pool", "positive")]
    fill(labeled, workdir / "labels.csv", pending + outside)
    picks = pick(pool_file, 10, config, workdir / "labels.csv", "badge", workdir / "next.csv")
    rows = read_csv(workdir / "next.csv")
    assert picks.strategy == "badge" and len(rows) == 10
    given = {text for text, _ in labeled + pending}
    assert not given & {row["text"] for row in rows}
    assert {row["guess"] for row in rows} <= {"negative", "positive"}
    assert [float(row["score"]) for row in rows] == pytest.approx(picks.scores.tolist(), rel=1e-5)
    again = pick(pool_file, 10, config, workdir / "labels.csv", "margin", workdir / "m.csv")
    scores = [float(row["score"]) for row in read_csv(workdir / "m.csv")]
    assert scores == sorted(scores, reverse=True) and again.strategy == "margin"


def test_the_picks_never_overwrite_the_labels_and_bad_arguments_are_refused(
    tiny_config, workdir, pool_file
):
    config = load_config(tiny_config)
    fill([(POSITIVE[0], "positive")], workdir / "labels.csv")
    with pytest.raises(PipelineError, match="would lose your labels"):
        pick(pool_file, 5, config, workdir / "labels.csv", out=workdir / "labels.csv")
    with pytest.raises(PipelineError, match="unknown strategy 'best'"):
        pick(pool_file, 5, config, strategy="best")
    with pytest.raises(PipelineError, match="N must be at least 1"):
        pick(pool_file, 0, config)
