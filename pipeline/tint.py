"""Word explanations (`Classifier.explain`) for people: words tinted by weight, and the top words.

On a terminal each word gets a background from xterm's 256-colour palette, which nearly every
terminal has: blue when it pushes toward the row's label, orange when it pushes against it (a
pair that colour-blind readers tell apart, and that does not read as good/bad sentiment), deeper
for a larger |weight| against the text's largest. The text between words is printed as it is,
so the tinted line is the text. The top words are also written out with their signed weights,
so the explanation reads without colour too: NO_COLOR (https://no-color.org) turns colour off.
"""

from __future__ import annotations

import os
from typing import Any

TOWARD = (153, 117, 75, 33)  # xterm-256 blues, pale to deep: black text stays readable on all
AGAINST = (223, 216, 215, 208)  # xterm-256 oranges, pale to deep
TOP = 5  # the words written out (and batch_predict's top_words)


def wants_color() -> bool:
    """Colour on a terminal, unless NO_COLOR is set (and not empty) or the terminal is dumb."""
    return not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def top_words(words: list[dict[str, Any]], k: int = TOP) -> list[dict[str, Any]]:
    """The `k` words with the largest |weight|, largest first (a tie: the earlier word first)."""
    return sorted(words, key=lambda word: -abs(word["weight"]))[:k]


def tinted(text: str, words: list[dict[str, Any]], color: bool = True) -> str:
    """`text` with each word on a background by its weight; `text` itself without `color`."""
    if not color:
        return text
    largest = max(abs(word["weight"]) for word in words) if words else 0.0
    pieces, last = [], 0
    for word in words:
        share = word["weight"] / largest if largest else 0.0
        pieces += [text[last : word["start"]], paint(text[word["start"] : word["end"]], share)]
        last = word["end"]
    return "".join(pieces) + text[last:]


def paint(piece: str, share: float) -> str:
    """`piece` in black on the ramp's step for `share` (-1..1); as it is when |share| <= 1/8."""
    level = round(abs(share) * len(TOWARD))
    if not level:
        return piece
    background = (TOWARD if share > 0 else AGAINST)[level - 1]
    return f"\x1b[38;5;16;48;5;{background}m{piece}\x1b[0m"


def strongest(words: list[dict[str, Any]]) -> str:
    """The top words with their signed weights, e.g. ``loved +1.21  dull -0.40``."""
    return "  ".join(f"{word['word']} {word['weight']:+.2f}" for word in top_words(words))


def legend(method: str, color: bool = True) -> str:
    """One line saying what the colours (with `color`) and the numbers mean."""
    numbers = (
        f"word +n.nn: pushes toward the label, -n.nn: against it (its weight in the label's "
        f"log-odds, by {method})"
    )
    if not color:
        return numbers
    colours = f"{paint(' toward ', 1.0)} {paint(' against ', -1.0)} the label, deeper: stronger"
    return f"{colours}; {numbers}"
