"""The shapes of the service's JSON: the body of POST /predict and /explain, and their answers
(the API docs show them; the answers are checked against them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictStr


class PredictRequest(BaseModel):
    """The body of POST /predict and /explain."""

    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr]


class Result(BaseModel):
    """One text's answer: its label and probabilities, or why it has none."""

    text: str  # printable: `Classifier.results` writes a raw surrogate as an escape
    label: str | None = None
    probability: float | None = None
    p_positive: float | None = None
    probabilities: dict[str, float] | None = None
    tokens: int | None = None  # what was read (`pipeline.results`)
    windows: int | None = None
    truncated: bool | None = None
    error: str | None = None


class PredictResponse(BaseModel):
    """The answer of POST /predict: one result per text, in order."""

    results: list[Result]


class Word(BaseModel):
    """A word of the text (`text[start:end] == word`, in code points) and its weight in the
    predicted class's log-odds: positive when it pushes toward the label."""

    word: str
    start: int
    end: int
    weight: float
    weights: dict[str, float] | None = None  # more than two classes: each class's log-odds


class Explained(Result):
    """One text's answer with its words' weights, or why it has none."""

    words: list[Word] | None = None


class ExplainResponse(BaseModel):
    """The answer of POST /explain: one result per text, in order."""

    results: list[Explained]
