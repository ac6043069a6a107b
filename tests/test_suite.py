"""The suite end to end on tiny task folders with the tiny encoder and the shipped task configs."""

import json
import logging

import pytest
from conftest import ROOT, write_tsv

from pipeline import PipelineError
from pipeline.config import load_config
from pipeline.studies.suite import find_tasks, run_suite

TASKS = ROOT / "configs" / "suite"


@pytest.fixture
def suite_data(tmp_path):
    """mr (kfold), sst5 (split with a test file) and trec (kfold, no test file)."""
    root = tmp_path / "suite"
    words = ["good", "bad", "fine", "dull", "warm", "cold"]
    (root / "mr").mkdir(parents=True)
    write_tsv(
        root / "mr" / "train.tsv",
        [(f"{words[i % 6]} film {i}", "positive" if i % 2 == 0 else "negative") for i in range(60)],
    )
    (root / "sst5").mkdir()
    rows = [(" ".join(["good"] * k + ["film", str(i)]), k) for i in range(8) for k in range(5)]
    for split in ("train", "dev", "test"):
        write_tsv(root / "sst5" / f"{split}.tsv", rows)
    (root / "trec").mkdir()
    classes = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    write_tsv(
        root / "trec" / "train.tsv", [(f"what {i} is it ?", classes[i % 6]) for i in range(66)]
    )
    (root / "cr").mkdir()  # a folder without a train file is skipped
    return root


def test_finds_task_folders_with_train_files(suite_data):
    tasks = find_tasks(suite_data, TASKS)
    assert list(tasks) == ["mr", "sst5", "trec"]  # SentEval's column order
    assert tasks["trec"].label_column == "label" and tasks["mr"].protocol == "kfold"
    with pytest.raises(PipelineError, match="no task folders under"):
        find_tasks(suite_data / "mr", TASKS)


def test_writes_the_table_and_a_rerun_is_cached(tiny_config, suite_data, workdir, caplog):
    config = load_config(tiny_config, ["run=tiny-suite"])
    row = run_suite(config, suite_data, TASKS)
    saved = json.loads((workdir / "reports" / "suite" / "tiny-suite.json").read_text())
    assert saved["tasks"].keys() == {"mr", "sst5", "trec"}
    mr, sst5, trec = (saved["tasks"][name] for name in ("mr", "sst5", "trec"))
    assert mr["senteval"]["test_std"] is not None and len(mr["senteval"]["cs"]) == 10
    assert sst5["classes"] == 5 and sst5["senteval"]["test"] is not None
    assert trec["senteval"]["test"] is None and trec["senteval"]["dev"] > 0  # no test file
    for task in saved["tasks"].values():
        assert (
            0 <= task["senteval"]["dev"] <= 100
            and task["pipeline"]["test" if task is mr else "dev"]
        )
    table = (workdir / "reports" / "suite" / "tiny-suite.md").read_text()
    assert "| tiny-suite |" in table and "(dev)" in table and "every number" in table
    assert "| tiny-suite |" in (workdir / "reports" / "suite" / "index.md").read_text()
    caplog.clear()
    caplog.set_level(logging.INFO)
    again = run_suite(config, suite_data, TASKS)
    assert caplog.text.count("cache hit") == 3
    assert again["tasks"]["mr"]["senteval"] == row["tasks"]["mr"]["senteval"]
