"""Bad input, as a user meets it: exit code 2, the file and line named, nothing written."""

import json

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, run_cli

from pipeline import PipelineError
from pipeline.classifier import Classifier
from pipeline.frozen_encoder import FrozenEncoder
from pipeline.scale.batch_predict import batch_predict


def features(config, cwd, *extra):
    return run_cli("-m", "pipeline.features", "--config", str(config), *extra, cwd=cwd)


def assert_clean_failure(result, *fragments, workdir):
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    assert not (workdir / "data").exists()


# test_data.py and test_config.py check the messages in-process; a few run here as a user meets them
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"sentence\tstars\nfine\t1\n", "no 'label' column"),
        (b"sentence\tlabel\nfine\t1\nbad\t7\n", "line 3: label '7' is not 0 or 1"),
        (b"sentence\tlabel\nfine\tpositive\n", "every training sentence has the label 'positive'"),
        (b"sentence\tlabel\nfine\t1\nna\xefve\t0\n", "line 3: not UTF-8"),
    ],
)
def test_bad_train_file(tiny_config, tiny_data, workdir, content, message):
    (tiny_data / "train.tsv").write_bytes(content)
    result = features(tiny_config, workdir)
    assert_clean_failure(result, message, str(tiny_data / "train.tsv"), workdir=workdir)


def test_windows_line_endings_are_fine(tiny_config, tiny_data, workdir):
    rows = b"fine\t1\nawful\t0\n" * 4
    (tiny_data / "train.tsv").write_bytes((b"sentence\tlabel\n" + rows).replace(b"\n", b"\r\n"))
    assert features(tiny_config, workdir).returncode == 0


def test_missing_files(tiny_config, tiny_data, workdir):
    (tiny_data / "dev.tsv").unlink()
    assert_clean_failure(features(tiny_config, workdir), "data.protocol=kfold", workdir=workdir)
    result = features(tiny_config, workdir, "--data", str(workdir / "nowhere"))
    assert_clean_failure(result, "data folder not found", workdir=workdir)
    result = run_cli("-m", "pipeline.features", "--config", "nope.yaml", cwd=workdir)
    assert_clean_failure(result, "config file not found: nope.yaml", workdir=workdir)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("encoder.precision=fp64", "valid values: fp32, bf16, fp16"),
        ("encoder.name=not-an-encoder", "not a local folder, not an alias (minilm, mpnet)"),
        ("encoder.pooling=pooler", "has no pooler output; use cls or mean"),
        ("data.empty=ignore", "valid values: error, drop"),
    ],
)
def test_bad_config_values(tiny_config, workdir, override, message):
    assert_clean_failure(
        features(tiny_config, workdir, "--set", override), message, workdir=workdir
    )


def test_predict_bad_inputs_get_per_line_answers(tiny_model, workdir):
    texts = workdir / "texts.txt"
    texts.write_text("a good film\n\n   \n😀🎬\nひどい映画\n" + "x" * 100_000 + "\n")
    result = run_cli(str(ROOT / "pipeline" / "predict.py"), "--file", str(texts), cwd=workdir)
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[1:]
    assert len(rows) == 6
    assert [row.split()[0] for row in rows].count("error") == 2
    missing = run_cli(str(ROOT / "pipeline" / "predict.py"), "--file", "nope.txt", cwd=workdir)
    assert missing.returncode == 2 and "cannot read nope.txt" in missing.stderr


# issue 26: one bad text never breaks another, in every entry point (the service: test_serve.py)
BAD_TEXTS = {  # text: the start of its error
    "\ud800": "not valid Unicode (unpaired surrogate U+D800 at character 1)",
    "fine \udfff": "not valid Unicode (unpaired surrogate U+DFFF at character 6)",
    "": "empty text",
    " \t ": "empty text",
    "\u200b\u200b": "empty text",
    "\u200d\ufeff\u2060": "empty text",
    "\x00\x1b": "empty text",
    "\u0301": "empty text",
}


def test_classifier_gives_each_bad_text_its_own_error(tiny_model):
    classifier = Classifier.load(tiny_model)
    texts = ["fine film", *BAD_TEXTS, "awful film"]
    rows = classifier.results(texts)
    assert [row.get("error") for row in rows[1:-1]] == list(BAD_TEXTS.values())
    assert rows[0] == classifier.results(["fine film"])[0]
    assert rows[-1] == classifier.results(["awful film"])[0]
    with pytest.raises(PipelineError, match=r"^text 1: not valid Unicode"):
        classifier.predict(["fine film", "\ud800"])


def test_batch_predict_labels_the_rows_around_a_bad_jsonl_row(tiny_model, workdir):
    rows = ["fine film", "\ud800", 3, None, "\u200b", "awful film"]
    source = workdir / "texts.jsonl"
    source.write_text("".join(json.dumps({"text": text}) + "\n" for text in rows))
    output = batch_predict(tiny_model, source, workdir / "out.parquet", progress=False)
    table = pq.read_table(output).to_pydict()
    assert table["error"][1:5] == [
        BAD_TEXTS["\ud800"],
        "not a string",
        "not a string",
        "empty text",
    ]
    assert table["label"][0] is not None and table["label"][-1] is not None


def test_predict_with_a_command_line_byte_that_is_not_utf8(tiny_model, workdir):
    # Python passes the byte on as a surrogate escape (U+DCE9)
    predict = [str(ROOT / "pipeline" / "predict.py"), "--model", str(tiny_model), "--json"]
    result = run_cli(*predict, b"caf\xe9 good", "fine film", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    bad, good = map(json.loads, result.stdout.splitlines())
    assert bad == {
        "text": "caf\\udce9 good",
        "error": "not valid Unicode (unpaired surrogate U+DCE9 at character 4)",
    }
    assert good["label"] in ("positive", "negative")


def test_frozen_encoder_gives_a_clear_error_for_a_text_it_cannot_encode(tiny_encoder):
    encoder = FrozenEncoder(str(tiny_encoder), pooling="mean")
    for text in ("\ud800", "\u200b\u200b"):
        with pytest.raises(PipelineError, match=r"text 1: (not valid Unicode|empty text)"):
            encoder.transform(["fine film", text])
