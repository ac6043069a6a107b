import re

from pipeline.plots import MAX_LINES, WRAP, word_lines, wrong_explained


def words(text: str) -> list[dict]:
    """`text`'s words as `Classifier.explain` gives them: letters, or a punctuation mark."""
    return [
        {"word": m.group(), "start": m.start(), "end": m.end(), "weight": 0.1 * (-1) ** i}
        for i, m in enumerate(re.finditer(r"\w+|[^\w\s]", text))
    ]


def test_words_are_spaced_as_in_the_text():
    lines = word_lines(words("don't go"))
    assert [(column, text) for column, text, _ in lines[0]] == [
        (0, "don"),
        (3, "'"),
        (4, "t"),
        (6, "go"),
    ]


def test_a_long_sentence_wraps_then_ends_in_an_ellipsis():
    text = " ".join(f"w{i:02d}" for i in range(60))  # 239 characters
    lines = word_lines(words(text))
    assert len(lines) == MAX_LINES
    assert all(column + len(t) <= WRAP for line in lines for column, t, w in line if w is not None)
    shown = [t for line in lines for _, t, w in line if w is not None]
    assert shown == text.split()[: len(shown)] and len(shown) < 60
    assert lines[-1][-1][1:] == ("…", None)


def test_the_figure_draws_short_long_and_dollar_sentences(tmp_path):
    sentences = [
        {"text": t, "label": "negative", "predicted": "positive", "probability": 0.9}
        | {"words": words(t)}
        for t in ("a bad film", "it costs $5 and $10 , " * 12)
    ]
    path = tmp_path / "wrong_explained.png"
    wrong_explained({"method": "banzhaf", "sentences": sentences}, path, "tiny")
    assert path.read_bytes()[:4] == b"\x89PNG"
