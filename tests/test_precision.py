import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import PipelineError
from pipeline.config import EncoderConfig, load_config
from pipeline.encoding.batching import embed
from pipeline.encoding.encoder import load_encoder
from pipeline.features import load_arrays
from pipeline.studies.precision import (
    EmulatedMatmuls,
    emulated,
    load_as_on_a_fast_cpu,
    precision_study,
)

TEXTS = [
    "a visually stunning rumination on love , memory and history",
    "fine .",
    "an overlong , overwrought and ultimately exhausting melodrama",
    "bad",
]


def test_bf16_products_are_fp32_on_bf16_values_rounded_once():
    torch.manual_seed(0)
    x, w, b = (torch.randn(shape).bfloat16() for shape in ((64, 96), (48, 96), (48,)))
    with EmulatedMatmuls() as mode:
        linear = torch.nn.functional.linear(x, w, b)
        product = x @ w.T
        untouched = x.float() @ w.float().T  # fp32 products are not the emulation's business
    assert mode.calls == 2
    assert linear.dtype == product.dtype == torch.bfloat16
    want = torch.nn.functional.linear(x.float(), w.float(), b.float()).bfloat16()
    assert torch.equal(linear, want) and torch.equal(product, (x.float() @ w.float().T).bfloat16())
    real = torch.nn.functional.linear(x, w, b)  # the bf16 kernel: the same up to sum order
    assert (real != linear).float().mean() < 0.01
    assert torch.equal(untouched, x.float() @ w.float().T)


def test_int8_products_are_exact():
    torch.manual_seed(0)
    a = torch.randint(-128, 128, (64, 256), dtype=torch.int8)
    b = torch.randint(-128, 128, (256, 32), dtype=torch.int8)
    with EmulatedMatmuls() as mode:
        emulation = torch._int_mm(a, b)
    assert mode.calls == 1 and emulation.dtype == torch.int32
    assert torch.equal(emulation, torch._int_mm(a, b))


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_emulated_vectors_match_the_real_kernels(tiny_encoder, precision):
    config = EncoderConfig(name=str(tiny_encoder), pooling="mean", precision=precision)
    fp32, _ = embed(load_encoder(EncoderConfig(name=str(tiny_encoder), pooling="mean")), TEXTS)
    encoder = load_as_on_a_fast_cpu(config)
    real, _ = embed(encoder, TEXTS, progress=False)
    with emulated() as mode:
        emulation, _ = embed(encoder, TEXTS, progress=False)
    assert mode.calls > 0
    assert np.abs(emulation - real).max() <= (1e-6 if precision == "int8" else 0.05)
    assert np.abs(real - fp32).max() > 1e-4  # the precision really is not fp32


def test_int8_is_quantized_for_a_cpu_with_vnni(tiny_encoder):
    encoder = load_as_on_a_fast_cpu(EncoderConfig(name=str(tiny_encoder), precision="int8"))
    weight = encoder.model.transformer.layer[0].ffn.lin1.weight
    assert not weight.reduce_range and int(weight.qdata.abs().max()) > 64


def test_study_compares_fp32_and_the_emulated_precision(tiny_config, workdir):
    config = load_config(tiny_config, ["run=tiny-int8", "encoder.precision=int8"])
    report = precision_study(config, check_sentences=4)
    assert set(report["accuracy"]) == {"fp32", "int8"}
    assert report["emulated_matmuls"] > 0
    only = report["right_in_one_only"]
    assert set(only) == {"fp32", "int8"}
    assert only["fp32"] - only["int8"] == round(report["cost_points"] / 100 * 20)  # 20 dev
    assert report["check"]["emulated~real"]["min"] > 0.99999
    assert report["cosine_to_fp32"]["eval"]["mean"] > 0.99
    int8 = load_arrays(Path(report["features"]["int8"]), "eval")[0]
    fp32 = load_arrays(Path(report["features"]["fp32"]), "eval")[0]
    assert np.abs(int8 - fp32).max() > 1e-5  # the study's int8 vectors really are int8
    written = json.loads((workdir / "reports/emulated/tiny-int8/precision.json").read_text())
    assert written["cost_points"] == pytest.approx(report["cost_points"])
    assert (workdir / "models/emulated/tiny-int8-fp32/model.json").is_file()
    # the emulated vectors never land in the real cache, which holds fp32 only
    real = [json.loads(m.read_text()) for m in (workdir / "data/features").glob("*/meta.json")]
    assert [meta["inputs"]["precision"] for meta in real] == ["fp32"]
    (emulated_meta,) = (workdir / "data/features-emulated").glob("*/meta.json")
    assert json.loads(emulated_meta.read_text())["inputs"]["int8"]["reduce_range"] is False  # VNNI


def test_study_refuses_fp32(tiny_config, workdir):
    with pytest.raises(PipelineError, match="emulates bf16 or int8"):
        precision_study(load_config(tiny_config))
