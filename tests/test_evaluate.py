import json

import numpy as np
import pytest
from conftest import NEGATIVE, POSITIVE, write_tsv
from test_features import age

from pipeline import Classifier, PipelineError
from pipeline.config import load_config
from pipeline.data.splits import load_splits
from pipeline.data.tables import CHUNK_ROWS
from pipeline.data.texts import SpooledTexts
from pipeline.evaluate import EXPLAINED, by_length, confidently_wrong, evaluate, scores
from pipeline.features import build_features
from pipeline.hub import weight_files
from pipeline.train import train


def binary(p_positive):
    p = np.asarray(p_positive)
    return np.column_stack([1 - p, p])


def test_scores_on_a_hand_checked_example():
    y_true = np.array([1, 1, 1, 0, 0])
    result = scores(y_true, binary([0.9, 0.8, 0.4, 0.7, 0.1]), ["negative", "positive"])
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 / 3)
    assert result["roc_auc"] == pytest.approx(5 / 6)
    assert result["confusion_matrix"] == [[1, 1], [1, 2]]
    assert result["n"] == 5
    assert result["macro_f1"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert result["per_class"][0] == {
        "label": "negative",
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "n": 2,
    }


def test_scores_for_three_classes_on_a_hand_checked_example():
    y_true = np.array([0, 1, 2, 2])
    proba = np.array([[0.5, 0.05, 0.45], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.5, 0.1, 0.4]])
    result = scores(y_true, proba, ["a", "b", "c"])
    assert result["accuracy"] == pytest.approx(3 / 4)
    assert result["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert [c["f1"] for c in result["per_class"]] == pytest.approx([2 / 3, 1.0, 2 / 3])
    assert result["macro_f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    assert result["roc_auc"] == pytest.approx((2.5 / 3 + 1.0 + 0.75) / 3)  # one-vs-rest, macro
    assert "precision" not in result  # no positive class among three


def test_writes_metrics_report_and_prints_a_table(tiny_config, workdir, capsys):
    config = load_config(tiny_config)
    build_features(config, progress=False)
    train(config)
    metrics = evaluate(config)
    saved = json.loads((workdir / "reports" / "tiny" / "metrics.json").read_text())
    assert saved["classifier"] == metrics["classifier"]
    assert saved["classifier"]["n"] == 20
    baseline = saved["most_frequent_baseline"]
    assert baseline["accuracy"] == pytest.approx(0.5) and baseline["roc_auc"] == 0.5
    report = (workdir / "reports" / "tiny" / "report.md").read_text()
    assert "| accuracy |" in report and "Confusion matrix" in report
    for name in ("confusion_matrix", "roc_curve", "reliability", "accuracy_by_length"):
        png = workdir / "reports" / "tiny" / f"{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG", name
        assert f"![{name}]({name}.png)" in report
    assert sum(row["n"] for row in saved["by_length"]) == 20
    wrong = saved["most_confidently_wrong"]
    assert len(wrong) <= 10
    assert [w["p_wrong_label"] for w in wrong] == sorted(
        (w["p_wrong_label"] for w in wrong), reverse=True
    )
    assert all(w["p_wrong_label"] > 0.5 for w in wrong)
    assert "classifier" in capsys.readouterr().out


def test_by_length_and_confidently_wrong_on_a_hand_checked_example():
    texts = ["one", "two words", "a b c d e f g", "x " * 40]
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.4, 0.1])
    rows = by_length(texts, y, binary(p))
    assert rows == [
        {"words": "1-5", "n": 2, "accuracy": 0.5},
        {"words": "6-10", "n": 1, "accuracy": 0.0},
        {"words": "31+", "n": 1, "accuracy": 1.0},
    ]
    wrong = confidently_wrong(texts, y, binary(p), ["negative", "positive"])
    assert [w["text"] for w in wrong] == ["two words", "a b c d e f g"]
    assert wrong[0] == {
        "text": "two words",
        "label": "negative",
        "predicted": "positive",
        "p_wrong_label": 0.8,
    }


def test_by_length_and_confidently_wrong_read_each_scored_rows_text():
    texts = SpooledTexts(["one", "two words", "a b c d e f g"])  # a large file's texts, on disk
    rows = np.tile(np.arange(3), 2)  # two experiments, each predicting every row
    y = np.array([1, 0, 1, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.4, 0.6, 0.3, 0.95])
    assert by_length(texts, y, binary(p), rows) == [
        {"words": "1-5", "n": 4, "accuracy": 0.75},
        {"words": "6-10", "n": 2, "accuracy": 0.0},
    ]
    wrong = confidently_wrong(texts, y, binary(p), ["negative", "positive"], rows=rows)
    assert [(w["text"], w["p_wrong_label"]) for w in wrong] == [
        ("a b c d e f g", 0.95),
        ("two words", 0.8),
        ("a b c d e f g", 0.6),
    ]


WORDS = ("good", "bad", "fine", "dull")


def label(i: int) -> int:
    """The class of sentence `i`: its word's (good, fine: 0; bad, dull: 1), every tenth flipped,
    so that some are wrong whatever the classifier."""
    return (i % 2) ^ (i % 10 == 0)


def large_rows(n: int) -> list[tuple[str, int]]:
    return [(f"{WORDS[i % 4]} film {i}", label(i)) for i in range(n)]


@pytest.mark.parametrize("protocol", ["kfold", "mteb"])
def test_a_file_too_large_to_keep_in_memory(protocol, tiny_config, workdir):
    """Over CHUNK_ROWS rows the texts stay on disk (SpooledTexts); the scored split is large:
    train for kfold (scored out of fold), eval for mteb (every experiment predicts each row)."""
    n = CHUNK_ROWS + 500
    folder = workdir / "large"
    folder.mkdir()
    if protocol == "kfold":
        write_tsv(folder / "train.tsv", large_rows(n))
    else:
        write_tsv(folder / "train.tsv", large_rows(40))
        write_tsv(folder / "dev.tsv", large_rows(n))
    data = [f"data.dir={folder}", f"data.protocol={protocol}", "data.folds=2", "data.experiments=2"]
    config = load_config(tiny_config, [*data, "encoder.max_length=6", "train.cs=[1.0]"])
    role = "train" if protocol == "kfold" else "eval"
    assert isinstance(load_splits(config.data)[role].texts, SpooledTexts)
    build_features(config, progress=False)
    train(config)
    metrics = evaluate(config)
    scored = n if protocol == "kfold" else 2 * n
    assert metrics["scored"].startswith(
        "train, out of fold" if protocol == "kfold" else "eval, MTEB"
    )
    assert metrics["classifier"]["n"] == scored
    assert metrics["by_length"] == [  # every sentence has three words
        {"words": "1-5", "n": scored, "accuracy": pytest.approx(metrics["classifier"]["accuracy"])}
    ]
    wrong = metrics["most_confidently_wrong"]
    assert len(wrong) == 10
    for w in wrong:  # each text is the scored row's own
        assert w["label"] == ["negative", "positive"][label(int(w["text"].split()[-1]))]
        assert w["predicted"] != w["label"]
    assert metrics["wrong_explained"]["sentences"] == []  # other models than the saved scored
    assert "wrong_explained" not in metrics["figures"]


def five_class_folder(folder):
    """Sentences whose class is the number of times 'good' appears, 0-4; test.tsv labeled."""
    folder.mkdir()
    rows = [(" ".join(["good"] * k + ["film", str(i)]), k) for i in range(12) for k in range(5)]
    write_tsv(folder / "train.tsv", rows)
    write_tsv(folder / "dev.tsv", rows[:20])
    write_tsv(folder / "test.tsv", rows[-15:])
    return folder


def test_five_classes_with_a_labeled_test_split(tiny_config, workdir):
    folder = five_class_folder(workdir / "sst5")
    names = "[very negative, negative, neutral, positive, very positive]"
    config = load_config(
        tiny_config,
        [f"data.dir={folder}", "data.labels=" + names, "data.test_split=test", "train.cs=[100.0]"],
    )
    build_features(config, progress=False)
    train(config)
    metrics = evaluate(config)
    assert metrics["labels"][2] == "neutral"
    assert len(metrics["classifier"]["confusion_matrix"]) == 5
    assert [c["label"] for c in metrics["classifier"]["per_class"]][-1] == "very positive"
    assert metrics["test"]["classifier"]["n"] == 15
    assert metrics["most_frequent_baseline"]["accuracy"] == pytest.approx(0.2)
    report = (workdir / "reports" / "tiny" / "report.md").read_text()
    assert "| very negative |" in report and "Scores on test" in report


def test_kfold_scores_out_of_fold_predictions(tiny_config, workdir):
    config = load_config(tiny_config, ["data.protocol=kfold", "data.folds=4"])
    build_features(config, progress=False)
    train(config)
    metrics = evaluate(config)
    assert metrics["classifier"]["n"] == 40  # every train sentence, scored out of fold
    assert len(metrics["folds"]["accuracy"]) == 4
    assert metrics["folds"]["mean"] == pytest.approx(np.mean(metrics["folds"]["accuracy"]))
    assert metrics["classifier"]["accuracy"] == pytest.approx(metrics["folds"]["mean"])


def test_refuses_features_of_data_changed_since(tiny_config, tiny_data, tiny_encoder, workdir):
    config = load_config(tiny_config)
    folder = build_features(config, progress=False)
    age(*tiny_data.iterdir(), *weight_files(tiny_encoder), *folder.glob("*.npy"))
    train(config)  # records the stamps
    age(tiny_data / "train.tsv", seconds=50)  # touched, the same bytes
    evaluate(config)
    dev = tiny_data / "dev.tsv"
    dev.write_text(dev.read_text().replace("\t1\n", "\t0\n", 1))
    age(dev, seconds=50)
    with pytest.raises(PipelineError, match="no features"):
        evaluate(config)


def test_explains_the_most_confidently_wrong_sentences(tiny_model, tiny_config, workdir):
    metrics = evaluate(load_config(tiny_config))
    wrong = metrics["most_confidently_wrong"][:EXPLAINED]
    assert wrong  # the tiny classifier gets a few dev sentences wrong
    out = workdir / "reports" / "tiny"
    saved = json.loads((out / "metrics.json").read_text())["wrong_explained"]
    rows = Classifier.load(tiny_model, engine="torch").explain([w["text"] for w in wrong])
    assert len(saved["sentences"]) == len(rows)
    for sentence, w, row in zip(saved["sentences"], wrong, rows, strict=True):
        assert sentence["text"] == w["text"] and sentence["label"] == w["label"]
        assert sentence["predicted"] == row["label"] == w["predicted"]
        assert sentence["probability"] == row["probability"]
        assert sentence["words"] == [
            {key: word[key] for key in ("word", "start", "end", "weight")} for word in row["words"]
        ]
    assert (out / "wrong_explained.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    assert "[wrong_explained.png](wrong_explained.png)" in report
    top = max(saved["sentences"][0]["words"], key=lambda word: word["weight"])
    assert f"“{top['word']}” {top['weight']:+.2f}" in report


def test_no_wrong_sentence_no_explained_figure(tiny_config, workdir):
    folder = workdir / "easy"
    folder.mkdir()
    rows = [(s, 1) for s in POSITIVE[:6]] + [(s, 0) for s in NEGATIVE[:6]]
    write_tsv(folder / "train.tsv", rows)
    write_tsv(folder / "dev.tsv", rows)  # scored on what it was trained on, with a large C
    config = load_config(tiny_config, [f"data.dir={folder}", "train.cs=[1000.0]"])
    stale = workdir / "reports" / "tiny" / "wrong_explained.png"  # an earlier evaluation's
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    build_features(config, progress=False)
    train(config)
    metrics = evaluate(config)
    assert metrics["classifier"]["accuracy"] == 1.0
    assert metrics["wrong_explained"] == {
        "sentences": [],
        "reason": "no sentence was classified wrong",
    }
    assert not stale.exists() and "wrong_explained" not in metrics["figures"]
    report = (workdir / "reports" / "tiny" / "report.md").read_text()
    assert "No words explained: no sentence was classified wrong." in report
    assert "wrong_explained.png" not in report


def test_an_encoder_that_cannot_be_loaded_leaves_the_report_without_the_figure(
    tiny_model, tiny_config, workdir
):
    meta_file = tiny_model / "model.json"
    meta = json.loads(meta_file.read_text())
    meta["encoder"]["name"] = str(workdir / "gone")  # its files are not there any more
    meta_file.write_text(json.dumps(meta))
    metrics = evaluate(load_config(tiny_config))
    assert metrics["wrong_explained"]["sentences"] == []
    assert metrics["wrong_explained"]["reason"].startswith("the encoder cannot be loaded")
    assert not (workdir / "reports" / "tiny" / "wrong_explained.png").exists()
    report = (workdir / "reports" / "tiny" / "report.md").read_text()
    assert "No words explained: the encoder cannot be loaded (cannot load encoder" in report
