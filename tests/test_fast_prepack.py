import json
import shutil

import pytest
import torch

from pipeline.config import EncoderConfig
from pipeline.encoding import row_cosines
from pipeline.encoding.batching import embed
from pipeline.encoding.encoder import load_encoder
from pipeline.fast.prepack import PrepackedLinear, can_prepack
from pipeline.fast.recipe import recipe

CPU = torch.device("cpu")
TEXTS = ["fine .", "a visually stunning rumination on love , memory and history", "bad"] * 3
needs_bf16 = pytest.mark.skipif(
    not can_prepack("bf16", CPU), reason="this CPU runs bf16 without prepacking (no AVX512-BF16)"
)


def linear_and_input(rows: int) -> tuple[torch.nn.Linear, torch.Tensor]:
    torch.manual_seed(0)
    return torch.nn.Linear(48, 80), torch.randn(2, rows, 48)


@pytest.mark.parametrize("rows", [1, 9, 300])
@pytest.mark.parametrize("activation", ["none", "gelu"])
def test_prepacked_linear_computes_the_linear_layer(rows, activation):
    linear, x = linear_and_input(rows)
    want = linear(x) if activation == "none" else torch.nn.functional.gelu(linear(x))
    got = PrepackedLinear(linear, torch.float32, activation)(x)
    assert got.shape == want.shape and got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@needs_bf16
def test_prepacked_linear_in_bf16_casts_its_input_as_autocast_does():
    linear, x = linear_and_input(9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = linear(x)
    got = PrepackedLinear(linear, torch.bfloat16)(x)  # an fp32 input, as after a layer norm
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want.float(), rtol=1e-2, atol=1e-2)


def test_a_prepacked_encoder_gives_the_vectors_of_torchs_linear_layers(tiny_encoder):
    config = EncoderConfig(name=str(tiny_encoder), pooling="mean")
    plain, packed = load_encoder(config, prepack=False), load_encoder(config)
    modules = list(packed.model.modules())
    assert not any(isinstance(m, torch.nn.Linear) for m in modules)
    assert packed.prepacked and not plain.prepacked
    fused = [m for m in modules if isinstance(m, PrepackedLinear) and m.activation == "gelu"]
    assert len(fused) == packed.model.config.n_layers  # each FFN's lin1 took its GELU in
    want, _ = embed(plain, TEXTS, progress=False)
    got, _ = embed(packed, TEXTS, progress=False)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_an_activation_other_than_gelu_stays_where_it_is(tmp_path, tiny_encoder):
    folder = shutil.copytree(tiny_encoder, tmp_path / "relu")
    settings = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**settings, "activation": "relu"}))
    config = EncoderConfig(name=str(folder), pooling="mean")
    plain, packed = load_encoder(config, prepack=False), load_encoder(config)
    ffn = packed.model.transformer.layer[0].ffn
    assert isinstance(ffn.lin1, PrepackedLinear) and ffn.lin1.activation == "none"
    assert isinstance(ffn.activation, torch.nn.ReLU)
    want, _ = embed(plain, TEXTS, progress=False)
    got, _ = embed(packed, TEXTS, progress=False)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@needs_bf16
def test_prepacked_bf16_stays_next_to_autocast_and_says_so(tiny_encoder):
    config = EncoderConfig(name=str(tiny_encoder), pooling="mean", precision="bf16")
    autocast, _ = embed(load_encoder(config, prepack=False), TEXTS, progress=False)
    packed, _ = embed(load_encoder(config), TEXTS, progress=False)
    assert row_cosines(autocast, packed).min() > 0.999
    assert recipe("bf16", CPU) != recipe("bf16", torch.device("cuda"))  # its own feature cache


def test_padded_batches_keep_torchs_linear_layers(tiny_encoder):
    """A padded batch has any number of rows; oneDNN would compile a kernel for each."""
    config = EncoderConfig(name=str(tiny_encoder), pooling="mean")
    encoder = load_encoder(config, attn_implementation="sdpa")
    assert not encoder.packed and not encoder.prepacked


def test_nothing_is_prepacked_off_the_cpu_or_in_int8():
    assert not can_prepack("fp32", torch.device("cuda"))
    assert not can_prepack("int8", CPU)
    assert recipe("bf16", torch.device("cuda")) == {"linear_layers": "torch, autocast"}
