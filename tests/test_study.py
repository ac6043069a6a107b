import json

import numpy as np
import pytest
import torch

from pipeline.config import EncoderConfig, load_config
from pipeline.encoding.encoder import load_encoder
from pipeline.studies.study import attention_pair, study, variants, word_mask

CLS, W1, W2, W3, SEP = range(5)


def received_to_attentions(scores: list[list[float]]) -> torch.Tensor:
    """(1, L, 1, T, T) attentions whose column sums (attention received) are `scores`."""
    s = torch.tensor(scores)
    return (s[:, None, :] / s.shape[1]).expand(-1, s.shape[1], -1)[None, :, None]


def test_anchor_leads_most_layers_and_partner_leads_where_anchor_leads():
    scores = [
        [9, 1, 5, 3, 9],  # layer 1: W2 leads, W3 second
        [9, 2, 6, 4, 9],  # layer 2: W2 leads, W3 second
        [9, 7, 1, 2, 9],
    ]  # layer 3: W1 leads (but the anchor does not lead here)
    words = torch.tensor([[False, True, True, True, False]])
    values = torch.tensor([[0.0, 0.1], [1.0, 2.0], [3.0, 4.0], [5.0, -6.0], [0.0, 0.0]])
    first = torch.ones(1, 5, 2)
    first[0, W3, 1] = -1.0  # a negative ratio: its log is NaN, set to 0
    last = torch.exp(values)[None]
    last[0, W3, 1] = 2.0
    pair, control = attention_pair(first, last, received_to_attentions(scores), words)
    np.testing.assert_allclose(pair[0], [3.0 + 5.0, 4.0 + 0.0], atol=1e-5)
    np.testing.assert_allclose(control[0], (last[0, W2] + last[0, W3]) / 2)


def test_a_single_word_is_its_own_partner():
    words = torch.tensor([[False, True, False]])
    first, last = torch.ones(1, 3, 2), torch.exp(torch.tensor([[[0.0, 0.0], [1.0, 2.0], [0, 0]]]))
    attentions = received_to_attentions([[5, 1, 5], [5, 1, 5]])
    pair, control = attention_pair(first, last, attentions, words)
    np.testing.assert_allclose(pair[0], [2.0, 4.0], atol=1e-5)
    np.testing.assert_allclose(control[0], last[0, 1])


def test_word_mask_leaves_out_specials_and_final_punctuation(tiny_encoder):
    encoder = load_encoder(EncoderConfig(name=str(tiny_encoder)))
    ids = [np.array(encoder.tokenizer(t)["input_ids"]) for t in ("a good film .", "so good")]
    mask = word_mask(encoder, ids, width=6)
    assert mask.tolist() == [
        [False, True, True, True, False, False],
        [False, True, True, False, False, False],
    ]


def test_variants_cover_every_layer_and_combination():
    rng = np.random.default_rng(0)
    arrays = {
        "cls": rng.normal(size=(4, 7, 3)),
        "mean": rng.normal(size=(4, 7, 3)),
        "attention_pair": rng.normal(size=(4, 3)),
        "pair_control": rng.normal(size=(4, 3)),
    }
    found = variants(arrays)
    assert {f"{p}, layer {k}" for p in ("cls", "mean") for k in range(7)} <= found.keys()
    assert found["mean, last 4 layers concatenated"][1].shape == (4, 12)
    assert found["cls + mean, last layer"][1].shape == (4, 6)
    np.testing.assert_allclose(found["mean, average of all layers"][1], arrays["mean"].mean(1))
    assert "pooler" not in found


@pytest.mark.parametrize("layer", ["-1", "[-2,-1]"])  # the pooled layers do not matter here
def test_study_end_to_end(tiny_config, workdir, layer):
    report = study(load_config(tiny_config, [f"encoder.layer={layer}"]), out_root=workdir / "study")
    names = {r["variant"] for r in report["results"]}
    assert {"cls, last layer", "attention-pair (trend)", "anchor+partner mean (control)"} <= names
    saved = json.loads((workdir / "study" / "tiny.json").read_text())
    assert saved["results"] == report["results"]
    assert (workdir / "study" / "tiny-by-layer.png").read_bytes()[:4] == b"\x89PNG"
    table = (workdir / "study" / "tiny.md").read_text()
    rows = [f"| {r['variant']} | {r['layers']} | {r['dim']} |" for r in report["results"]]
    assert all(row in table for row in rows)
