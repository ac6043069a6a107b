import argparse

import numpy as np
import pytest

from pipeline.bench.extraction import run
from pipeline.bench.markdown import markdown
from pipeline.bench.rates import matmul_rate, padding_ratio, pick_precisions
from pipeline.encoding.batching import MAX_PADDING

# the ways every run times besides ours at each precision
FP32_WAYS = (
    "ours (fp32, padded)",
    "ours (fp32, unprepacked)",
    "sentence-transformers encode()",
    "blog's way",
    "ONNX Runtime (fp32)",
    "ONNX Runtime (int8)",
)


def test_padding_ratio():
    lengths = np.array([4, 2, 2, 1])
    assert padding_ratio(lengths, [np.array([0, 1]), np.array([2, 3])]) == pytest.approx(12 / 9)
    assert padding_ratio(lengths, [np.array([i]) for i in range(4)]) == 1.0


def test_by_default_only_the_precisions_this_cpu_runs_natively(monkeypatch):
    monkeypatch.setattr("pipeline.bench.rates.runs_natively", lambda precision: precision != "bf16")
    picked, left_out = pick_precisions("native")
    assert picked == ["fp32", "int8"] and list(left_out) == ["bf16"]
    assert "AVX512-BF16" in left_out["bf16"] and "--precisions fp32,bf16" in left_out["bf16"]
    assert pick_precisions("int8, bf16") == (["fp32", "bf16", "int8"], {})  # asked: run anyway
    with pytest.raises(ValueError, match="unknown fp16"):
        pick_precisions("fp32,fp16")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
@pytest.mark.parametrize("prepacked", [True, False])
def test_matmul_rate_of_each_precision(precision, prepacked, monkeypatch):
    runs = []

    def one_second(run, repeats):  # each kernel runs once; the clock is taken out of the test
        runs.append(run())
        return {"median_s": 1.0}

    monkeypatch.setattr("pipeline.bench.rates.timed", one_second)
    rate = matmul_rate([(64, 32), (32, 64)], precision, rows=64, prepacked=prepacked)
    assert len(runs) == 1
    assert rate == pytest.approx(5 * 2 * 64 * (64 * 32 + 32 * 64) / 1e9)  # 5 rounds of both


def test_quick_run_on_the_tiny_encoder(tiny_encoder, tiny_data, workdir, monkeypatch):
    monkeypatch.setattr("pipeline.fast.int8.compile_model", lambda _: None)  # minutes
    missing = str(workdir / "no-such-encoder")
    args = argparse.Namespace(
        data=tiny_data,
        encoders=[str(tiny_encoder), missing],
        n=40,
        repeats=1,
        quick=True,
        glue_features=False,
        model=workdir / "no-model",
        precisions=["fp32", "bf16", "int8"],
    )
    report = run(args)
    tiny = report["encoders"][str(tiny_encoder)]
    ways = tiny["ways"]
    assert set(ways) == {"ours (fp32)", "ours (bf16)", "ours (int8)", *FP32_WAYS}
    assert ways["ours (fp32)"]["padding"] == 1.0  # packed
    assert 1.0 <= ways["ours (int8)"]["padding"] <= 1 / (1 - MAX_PADDING)  # embed's padded batches
    assert ways["blog's way"]["padding"] > 1.0
    assert tiny["real_tokens"] > 40 and set(tiny["matmul_gflops"]) == {
        "fp32",
        "bf16",
        "int8",
        "fp32 unpacked",
        "bf16 unpacked",
    }
    assert list(report["skipped"]) == [missing]  # not installed: a note, not a failure
    text = markdown(report)
    assert "| ours (int8) |" in text and "Skipped" in text


def test_a_run_in_fp32_only_on_mpnet_has_its_packing_rows(tiny_mpnet, tiny_data, workdir):
    """On a CPU without AVX512-BF16 and VNNI, bf16 and int8 would take hours."""
    args = argparse.Namespace(
        data=tiny_data,
        encoders=[str(tiny_mpnet)],
        n=40,
        repeats=1,
        quick=True,
        glue_features=False,
        model=workdir / "no-model",
        precisions=["fp32"],
    )
    report = run(args)
    ways = report["encoders"][str(tiny_mpnet)]["ways"]
    assert set(ways) == {"ours (fp32)", *FP32_WAYS}
    assert ways["ours (fp32)"]["padding"] == 1.0 < ways["ours (fp32, padded)"]["padding"]
    assert set(report["encoders"][str(tiny_mpnet)]["matmul_gflops"]) == {"fp32", "fp32 unpacked"}
    assert "fp32 in `F.linear` (unprepacked)" in markdown(report)
    assert "bf16 prepacked" not in markdown(report)


def test_explain_bench_times_labeling_explaining_and_one_encode_of_the_variants(tiny_model):
    from pipeline.bench.explain import bench, markdown, timing
    from pipeline.classifier import Classifier
    from pipeline.explain import DEFAULT_METHOD, plan_variants

    texts = ["a good film", "dull and far too long, but the actors try"]
    report = bench([tiny_model], texts, repeats=1)
    (row,) = report["rows"]  # the tiny model has no export: torch only
    assert (row["engine"], row["precision"], row["sentences"]) == ("torch", "fp32", 2)
    assert row["label_ms"] > 0 and row["explain_ms"] > 0 and row["embed_ms"] > 0
    classifier = Classifier.load(tiny_model, "torch")
    variants = [len(plan_variants(classifier, [t], DEFAULT_METHOD).variants.windows) for t in texts]
    assert row["variants_median"] == np.median(variants)
    assert "| torch | fp32 |" in markdown(report)
    assert timing(classifier, [], DEFAULT_METHOD) == {"method": DEFAULT_METHOD, "sentences": 0}
