"""The onnx engine: a checked export, run on ONNX Runtime and `tokenizers` alone."""

import json

import numpy as np
import pytest
from conftest import POSITIVE, ROOT, run_cli, sentences

from pipeline import PipelineError
from pipeline.classifier import Classifier
from pipeline.export import export

LONG = " ".join(POSITIVE * 3)  # over the tiny run's max_length (32 tokens)


@pytest.fixture
def exported(tiny_model):
    """The tiny classifier, exported (checked on its eval sentences, as make export does)."""
    export(tiny_model)
    return tiny_model


def test_predict_on_onnx_never_imports_the_training_stack(exported, workdir):
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['predict.py', '--engine', 'onnx', '--json', 'a good film', '']\n"
        "try:\n"
        f"    runpy.run_path({str(ROOT / 'pipeline' / 'predict.py')!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "print(sorted(sys.modules))\n"
    )
    result = run_cli("-c", code, cwd=workdir)

    assert result.returncode == 0, result.stderr
    *rows, modules = result.stdout.strip().splitlines()
    loaded = {name.split(".")[0] for name in eval(modules)}
    assert {"onnxruntime", "tokenizers"} <= loaded
    assert not loaded & {"torch", "transformers", "sklearn", "pandas", "torchao", "scipy"}
    answers = [json.loads(row) for row in rows]
    assert answers[0]["label"] in ("negative", "positive") and answers[1]["error"] == "empty text"


def test_onnx_answers_as_torch_does(exported):
    onnx, torch = Classifier.load(exported), Classifier.load(exported, "torch")
    texts = [LONG, "", "a good film", "\u200b", *sentences(30)]

    assert onnx.engine == "onnx"  # auto picks the export
    onnx_tokens, torch_tokens = (
        onnx.encoder.tokenize(texts, True),
        torch.encoder.tokenize(texts, True),
    )
    for got, want in zip(
        onnx_tokens.ids + onnx_tokens.offsets, torch_tokens.ids + torch_tokens.offsets, strict=True
    ):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(onnx_tokens.counts, torch_tokens.counts)
    assert onnx_tokens.windows.tolist() == torch_tokens.windows.tolist()
    assert onnx_tokens.windows[0] > 1 and (onnx_tokens.windows[1:] == 1).all()  # LONG is chunked
    assert not onnx_tokens.truncated.any() and not torch_tokens.truncated.any()
    onnx_rows, torch_rows = onnx.results(texts), torch.results(texts)
    assert [r.get("label", r.get("error")) for r in onnx_rows] == [
        r.get("label", r.get("error")) for r in torch_rows
    ]
    probabilities = [r["p_positive"] for r in onnx_rows if "label" in r]
    np.testing.assert_allclose(
        probabilities, [r["p_positive"] for r in torch_rows if "label" in r], atol=1e-5
    )


def test_a_vector_does_not_depend_on_its_batch(exported):
    encoder = Classifier.load(exported, "onnx").encoder
    texts = [LONG, *sentences(25), "fun"]

    together = encoder.encode(texts, progress=True)
    alone = np.stack([encoder.encode([text])[0] for text in texts])

    assert together.dtype == np.float32 and together.shape == (len(texts), encoder.dim)
    np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("file", ["encoder.onnx", "encoder.onnx.data", "tokenizer.json"])
@pytest.mark.parametrize("damage", ["changed", "missing"])
def test_a_damaged_export_is_refused(exported, file, damage):
    path = exported / file
    if damage == "missing":
        path.unlink()
    else:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 1
        path.write_bytes(bytes(data))

    with pytest.raises(PipelineError, match=r"run make export MODEL=.* again"):
        Classifier.load(exported, "onnx")
    assert Classifier.load(exported, "torch").engine == "torch"  # the torch engine still works


def test_no_export_is_a_clear_error_and_auto_takes_torch(tiny_model):
    with pytest.raises(PipelineError, match="has no ONNX export; run make export"):
        Classifier.load(tiny_model, "onnx")
    assert Classifier.load(tiny_model).engine == "torch"
