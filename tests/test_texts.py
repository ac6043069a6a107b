import pickle

import pytest

from pipeline.data.texts import SpooledTexts


def test_behaves_like_the_list_it_holds(monkeypatch):
    from pipeline.data import texts as module

    monkeypatch.setattr(module, "BLOCK", 3)  # iterate in several reads
    words = ["é", "", "a longer sentence", "😀 emoji", "x" * 10_000, "last"]
    spooled = SpooledTexts(words[:2])
    spooled.extend(words[2:])
    assert len(spooled) == len(words)
    assert list(spooled) == words
    assert spooled == words
    assert spooled != words[:-1]
    assert [spooled[i] for i in range(-6, 6)] == words + words
    for key in (slice(1, 4), slice(None, None, 2), slice(4, 2), slice(-2, None), slice(0, 99)):
        assert spooled[key] == words[key]
    with pytest.raises(IndexError):
        spooled[6]


def test_pickles_as_a_plain_list():
    restored = pickle.loads(pickle.dumps(SpooledTexts(["a", "b"])))
    assert type(restored) is list
    assert restored == ["a", "b"]
