import numpy as np
import pytest
import torch

from pipeline import PipelineError
from pipeline.config import Config, EncoderConfig
from pipeline.encoding import row_cosines
from pipeline.encoding.batching import embed
from pipeline.encoding.encoder import load_encoder
from pipeline.fast.int8 import SMOOTHING_ALPHA, compile_model, quantize_int8
from pipeline.fast.recipe import recipe
from pipeline.features import features_dir, fingerprint_inputs

SHORT = "fine ."
SENTENCE = "a visually stunning rumination on love , memory and history"
LONG = " ".join(["an overlong , overwrought and ultimately exhausting melodrama"] * 3)


@pytest.fixture(scope="module")
def load(tiny_encoder):
    def _load(**settings):
        return load_encoder(EncoderConfig(name=str(tiny_encoder), **settings))

    return _load


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_vectors_do_not_depend_on_batch_company_or_order(load, pooling):
    encoder = load(pooling=pooling, batch_tokens=4096)
    alone, _ = embed(encoder, [SENTENCE], progress=False)
    mixed = [SHORT, LONG, SENTENCE, "bad", LONG + " !", "an ok film"]
    together, _ = embed(encoder, mixed, progress=False)
    shuffled, _ = embed(encoder, mixed[::-1], progress=False)
    one_by_one = np.vstack([embed(encoder, [t], progress=False)[0] for t in mixed])
    assert np.abs(together[2] - alone[0]).max() <= 1e-4
    assert np.abs(together - shuffled[::-1]).max() <= 1e-4
    assert np.abs(together - one_by_one).max() <= 1e-4
    # a wrongly sliced batch gives every sentence the same vector
    distances = np.abs(together[:, None, :] - together[None, :, :]).max(axis=-1)
    assert distances[~np.eye(len(mixed), dtype=bool)].min() > 1e-3


def test_small_token_budget_gives_the_same_vectors(load):
    texts = [SHORT, LONG, SENTENCE, "bad"] * 5
    big, _ = embed(load(pooling="mean", batch_tokens=100_000), texts, progress=False)
    small, _ = embed(load(pooling="mean", batch_tokens=16), texts, progress=False)
    assert np.abs(big - small).max() <= 1e-4


def test_layers_and_poolings_differ(load):
    texts = [SENTENCE, SHORT]
    last, _ = embed(load(pooling="cls"), texts, progress=False)
    first, _ = embed(load(pooling="cls", layer=0), texts, progress=False)
    also_last, _ = embed(load(pooling="cls", layer=2), texts, progress=False)
    mean, _ = embed(load(pooling="mean"), texts, progress=False)
    assert last.shape == (2, 32) and last.dtype == np.float32
    np.testing.assert_allclose(last, also_last, atol=1e-6)
    assert np.abs(last - first).max() > 1e-3
    assert np.abs(last - mean).max() > 1e-3


def test_truncation_is_counted(load):
    encoder = load(max_length=8, long_texts="truncate")
    vectors, truncated = embed(encoder, [LONG, SHORT, SENTENCE], progress=False)
    assert truncated == 2
    assert vectors.shape == (3, 32)


def test_bf16_is_close_to_fp32(load):
    texts = [SENTENCE, SHORT, LONG]
    fp32, _ = embed(load(pooling="mean"), texts, progress=False)
    bf16, _ = embed(load(pooling="mean", precision="bf16"), texts, progress=False)
    cosine = row_cosines(fp32, bf16)
    assert cosine.min() > 0.99
    assert np.abs(fp32 - bf16).max() > 0  # autocast really ran


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"pooling": "pooler"}, "DistilBertModel .* has no pooler"),
        ({"layer": 3}, "out of range"),
        ({"layer": -4}, "out of range"),
        ({"precision": "fp16"}, "fp16 needs a CUDA GPU"),
        ({"device": "cuda"}, "no CUDA GPU"),
        ({"max_length": 129}, r"max_length=129 is more than .* reads at once \(128 tokens\)"),
    ],
)
def test_impossible_settings_are_clear_errors(load, settings, message):
    with pytest.raises(PipelineError, match=message):
        load(**settings)


def test_empty_input(load):
    vectors, truncated = embed(load(), [], progress=False)
    assert vectors.shape == (0, 32) and truncated == 0


def test_a_list_of_layers_concatenates_their_vectors(load):
    texts = [SENTENCE, SHORT, LONG]
    both, _ = embed(load(pooling="mean", layer=[1, -1]), texts, progress=False)
    first, _ = embed(load(pooling="mean", layer=1), texts, progress=False)
    last, _ = embed(load(pooling="mean"), texts, progress=False)
    assert both.shape == (3, 64)
    np.testing.assert_allclose(both, np.hstack([first, last]), atol=1e-5)


@pytest.fixture
def eager(monkeypatch):
    """int8 without its compile (the same quantized layers; compiling takes a minute or more)."""
    monkeypatch.setattr("pipeline.fast.int8.compile_model", lambda model: None)


def test_int8_is_close_to_fp32(load, eager):
    texts = [SENTENCE, SHORT, LONG, "bad"]
    fp32, _ = embed(load(pooling="mean"), texts, progress=False)
    encoder = load(pooling="mean", precision="int8")
    int8, _ = embed(encoder, texts, progress=False)
    cosine = row_cosines(fp32, int8)
    assert cosine.min() > 0.99
    assert np.abs(fp32 - int8).max() > 1e-4  # the linear layers really are int8
    weights = [m.weight for m in encoder.model.modules() if isinstance(m, torch.nn.Linear)]
    assert weights and all("Int8" in type(w).__name__ for w in weights)


def test_int8_smoothing_brings_minilm_closer_to_fp32():
    """MiniLM's layer norms have outlier channels: per-token scales alone lose the other
    channels' precision, SmoothQuant's smoothing keeps more of it (the packaged real encoder)."""
    texts = [SENTENCE, SHORT, LONG, "bad", "the acting is stiff and the plot is thin", "fun"]
    config = EncoderConfig(name="minilm", pooling="mean")
    fp32, _ = embed(load_encoder(config), texts, progress=False)

    def int8_drift(alpha: float | None) -> float:
        encoder = load_encoder(config, attn_implementation="sdpa")  # padded: nn.Linear layers
        quantize_int8(encoder.model, lambda t: embed(encoder, t, progress=False), alpha=alpha)
        int8, _ = embed(encoder, texts, progress=False)
        cosine = row_cosines(fp32, int8)
        return float(1 - cosine.mean())

    smoothed, per_token = int8_drift(SMOOTHING_ALPHA), int8_drift(None)
    assert 0 < smoothed < per_token / 1.5


def test_int8_has_its_own_features_folder(tiny_encoder, monkeypatch):
    def folder(precision: str) -> str:
        config = Config(encoder=EncoderConfig(name=str(tiny_encoder), precision=precision))
        return features_dir(fingerprint_inputs(config, {})).name

    assert folder("int8") != folder("fp32") != folder("bf16")
    cpu = torch.device("cpu")
    vnni = recipe("int8", cpu, int8_reduce_range=False)
    assert recipe("int8", cpu, int8_reduce_range=True) != vnni  # 7-bit int8 is not 8-bit int8
    here = folder("int8")
    monkeypatch.setattr("pipeline.fast.recipe.SMOOTHING_ALPHA", 0.8)
    assert folder("int8") != here


def test_int8_on_a_gpu_is_a_clear_error(load, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(PipelineError, match="int8 runs on the CPU only"):
        load(precision="int8", device="cuda")


@pytest.mark.parametrize(
    ("precision", "check"), [("bf16", "_is_avx512_bf16_supported"), ("int8", "_is_vnni_supported")]
)
def test_a_precision_this_cpu_runs_slowly_is_warned_about(
    tiny_encoder, eager, monkeypatch, caplog, precision, check
):
    # the warning alone: a CPU faked to have AVX512-BF16 cannot run the bf16 prepacked kernels
    config = EncoderConfig(name=str(tiny_encoder), precision=precision)
    for supported in (False, True):
        monkeypatch.setattr(torch.cpu, check, lambda supported=supported: supported)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        caplog.clear()
        load_encoder(config, prepack=False)
        warned = [r for r in caplog.records if "runs several times slower than fp32" in r.message]
        assert bool(warned) is not supported


def test_int8_runs_eager_when_compiling_is_off(caplog):
    caplog.set_level("INFO")
    model = torch.nn.Linear(2, 2)
    with torch._dynamo.config.patch(disable=True):  # as TORCH_COMPILE_DISABLE=1
        compile_model(model)
    assert model._compiled_call_impl is None and "compiling is off" in caplog.text
    compile_model(model)
    assert model._compiled_call_impl is not None  # compiles lazily, on the first call
