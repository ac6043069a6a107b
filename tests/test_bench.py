import argparse

import numpy as np
import pytest

from pipeline.bench import markdown, padding_ratio, run


def test_padding_ratio():
    lengths = np.array([4, 2, 2, 1])
    assert padding_ratio(lengths, [np.array([0, 1]), np.array([2, 3])]) == pytest.approx(12 / 9)
    assert padding_ratio(lengths, [np.array([i]) for i in range(4)]) == 1.0


def test_quick_run_on_the_tiny_encoder(tiny_encoder, tiny_data, workdir):
    args = argparse.Namespace(
        data=tiny_data,
        encoder=str(tiny_encoder),
        n=40,
        repeats=1,
        quick=True,
        model=workdir / "no-model",
    )
    report = run(args)
    ways = report["ways"]
    assert set(ways) == {
        "ours (fp32)",
        "ours (bf16)",
        "sentence-transformers encode()",
        "blog's way",
    }
    assert ways["ours (fp32)"]["ours_speedup"] == 1.0
    assert ways["ours (fp32)"]["padding"] == 1.0  # equal-length batches
    assert ways["blog's way"]["padding"] > 1.0
    assert report["real_tokens"] > 40 and report["matmul_gflops"]["fp32"] > 0
    assert "| ours (fp32) |" in markdown(report)
