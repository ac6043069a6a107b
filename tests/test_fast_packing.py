import numpy as np
import pytest
import torch

from pipeline.config import EncoderConfig
from pipeline.encoding import row_cosines
from pipeline.encoding.batching import embed, token_budget_batches
from pipeline.encoding.encoder import load_encoder
from pipeline.fast.packing import RunBiases, attend, pack, rounded_length, unpack

MIXED = [
    "a visually stunning rumination on love , memory and history",
    "fine .",
    "bad",
    "an ok film",
    "the best movie of the year",
    "an overlong , overwrought and ultimately exhausting melodrama , again and again",
    "dull",
]


@pytest.mark.parametrize(("pooling", "layer"), [("cls", -1), ("mean", -1), ("mean", [0, 1, -1])])
def test_packed_batches_give_the_padded_vectors(tiny_encoder, pooling, layer):
    config = EncoderConfig(name=str(tiny_encoder), pooling=pooling, layer=layer)
    packed = load_encoder(config)
    padded = load_encoder(config, attn_implementation="sdpa")
    assert packed.packed and not padded.packed
    ours, _ = embed(packed, MIXED * 3, progress=False)
    theirs, _ = embed(padded, MIXED * 3, progress=False)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("layer", [-1, [0, 1, -1]])
def test_packed_mpnet_gives_the_padded_vectors(tiny_mpnet, layer):
    """MPNet adds a relative position bias to its attention scores, per sentence when packed."""
    config = EncoderConfig(name=str(tiny_mpnet), pooling="mean", layer=layer)
    packed = load_encoder(config)
    padded = load_encoder(config, packing=False)  # transformers' MPNet attention
    assert packed.packed and packed.prepacked and not padded.packed
    ours, _ = embed(packed, MIXED * 3, progress=False)
    theirs, _ = embed(padded, MIXED * 3, progress=False)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_a_packed_mpnet_without_its_bias_would_differ(tiny_mpnet, monkeypatch):
    """The test above can fail: the same packed batches with no position bias."""
    config = EncoderConfig(name=str(tiny_mpnet), pooling="mean")
    theirs, _ = embed(load_encoder(config, packing=False), MIXED, progress=False)
    monkeypatch.setattr(RunBiases, "__call__", lambda self, length: None)
    ours, _ = embed(load_encoder(config), MIXED, progress=False)
    assert np.abs(ours - theirs).max() > 1e-3


@pytest.mark.parametrize("scale", [None, 0.3])
def test_bf16_attention_as_two_matmuls_matches_sdpa(scale):
    torch.manual_seed(0)
    q, k, v = (torch.randn(5, 4, 7, 16).bfloat16() for _ in range(3))  # (sentences, heads, len, d)
    reference = torch.nn.functional.scaled_dot_product_attention(
        q.float(), k.float(), v.float(), scale=scale
    )
    ours = attend(q, k, v, scale)
    assert ours.dtype == torch.bfloat16
    torch.testing.assert_close(ours.float(), reference, atol=0.03, rtol=0.02)


@pytest.mark.parametrize("model", ["tiny_encoder", "tiny_mpnet"])
def test_bf16_packed_batches_stay_close_to_padded_ones(request, model):
    folder = request.getfixturevalue(model)
    config = EncoderConfig(name=str(folder), pooling="mean", precision="bf16")
    ours, _ = embed(load_encoder(config), MIXED * 3, progress=False)
    theirs, _ = embed(load_encoder(config, packing=False), MIXED * 3, progress=False)
    assert row_cosines(ours, theirs).min() > 0.9999


def test_pack_restarts_positions_and_groups_equal_lengths():
    input_ids = torch.tensor([[5, 6, 7], [8, 9, 0], [3, 4, 0], [2, 0, 0]])
    mask = (input_ids != 0).long()
    ids, positions, runs = pack(input_ids, mask)
    assert ids.tolist() == [[5, 6, 7, 8, 9, 3, 4, 2]]
    assert positions.tolist() == [[0, 1, 2, 0, 1, 0, 1, 0]]
    assert runs == [(1, 3), (2, 2), (1, 1)]
    hidden = ids.unsqueeze(-1).float()  # a "layer output" that is the token id itself
    assert torch.equal(unpack(hidden, mask)[..., 0], input_ids.float())


def test_pack_tops_the_sequence_up_with_a_filler_sentence_of_its_own():
    input_ids = torch.tensor([[5, 6, 7], [8, 9, 0]])
    mask = (input_ids != 0).long()
    ids, positions, runs = pack(input_ids, mask, round_to=4)
    assert ids.tolist() == [[5, 6, 7, 8, 9, 0, 0, 0]]  # 5 tokens -> 8, a multiple of 4
    assert positions.tolist() == [[0, 1, 2, 0, 1, 0, 1, 2]]
    assert runs == [(1, 3), (1, 2)]  # the filler is in no run
    hidden = ids.unsqueeze(-1).float()
    assert torch.equal(unpack(hidden, mask)[..., 0], input_ids.float())


def test_rounded_length():
    assert [rounded_length(n, 64) for n in (1, 2, 9, 33, 64, 65, 775, 4096)] == [
        8, 8, 16, 40, 64, 128, 832, 4096
    ]  # fmt: skip
    assert rounded_length(775, 1) == 775


def test_packed_batches_hold_a_request_in_one_pass_within_budget():
    lengths = np.array([5, 40, 12, 12, 3, 7, 40, 1])
    order = np.argsort(-lengths, kind="stable")
    batches = token_budget_batches(order, lengths, budget=48, packed=True)
    assert np.concatenate(batches).tolist() == order.tolist()  # in order, each sentence once
    assert all(len(b) == 1 or lengths[b].sum() <= 48 for b in batches)
    assert [lengths[b].sum() for b in batches] == [40, 40, 40]
    request = np.repeat(np.arange(32, 10, -1), [11] + [1] * 21)  # 32 sentences, 22 lengths
    order = np.argsort(-request, kind="stable")
    assert len(token_budget_batches(order, request, budget=4096, packed=True)) == 1


@pytest.mark.parametrize("settings", [{"precision": "int8"}, {"attn_implementation": "eager"}])
def test_compiled_or_eager_encoders_stay_padded(tiny_encoder, settings):
    precision = settings.get("precision", "fp32")
    config = EncoderConfig(name=str(tiny_encoder), pooling="mean", precision=precision)
    encoder = load_encoder(config, attn_implementation=settings.get("attn_implementation"))
    assert not encoder.packed


def test_the_pooler_keeps_padded_batches():  # it reads position 0: one sentence if packed
    config = EncoderConfig(name="minilm", pooling="pooler")
    encoder = load_encoder(config)
    ours, _ = embed(encoder, MIXED, progress=False)
    theirs, _ = embed(load_encoder(config, attn_implementation="sdpa"), MIXED, progress=False)
    assert not encoder.packed
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
