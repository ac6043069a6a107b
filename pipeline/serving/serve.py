"""Serve a trained classifier over HTTP: a JSON API, a page for people, and OpenAPI docs.

    make serve MODEL=models/alammar-2000-minilm PORT=8000
    curl -s localhost:8000/predict -H 'Content-Type: application/json' \\
         -d '{"texts": ["a visually stunning rumination"]}'

POST /predict labels {"texts": [...]}, POST /explain labels them and weighs each word
(`Classifier.explain`); GET / is the page, /health and /model (the model.json) describe the
server, /docs and /openapi.json the API. Requests that arrive together are labeled together:
the first opens a batch, which stays open while more keep arriving (until a short window passes
with none), and their texts go through `Classifier.results` in batches of about
`Limits.batch_tokens` tokens, each taking one text of every waiting request in turn; so a big
request is labeled over several batches, and a small one sent during it does not wait for all of
it. /explain's requests are batched apart, in batches of about as much work (a text counts the
tokens of all its variants), on the same model thread. A request a client got wrong gets a 4xx
answer {"error": "..."}; anything else a 500 with no details; the server goes on serving either
way. A batch whose labeling fails is split and labeled again, down to single requests, so only a
request whose own texts fail gets the 500. Every answer carries an X-Request-ID header; a failure
is logged with that id, never with the text.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel

from pipeline import cli
from pipeline.classifier import ENGINES, Classifier
from pipeline.explain import BANZHAF_PER_WORD, MAX_VARIANTS
from pipeline.io import usable_cpus
from pipeline.probe import latest_model
from pipeline.serving.batcher import LabelingFailed, MicroBatcher
from pipeline.serving.failures import INTERNAL, RequestIds
from pipeline.serving.json_api import answer_errors_as_json, json_post, read_json
from pipeline.serving.schema import ExplainResponse, PredictRequest, PredictResponse

PAGE = Path(__file__).parent / "static" / "index.html"
ERRORS = {  # the 4xx answers of POST /predict and /explain, for the API docs
    400: "the body is not UTF-8, not JSON, or nested too deeply",
    413: "too many texts or tokens, a text too long, or a body too large",
    415: "Content-Type is not application/json",
    422: 'the JSON is not {"texts": [strings]}',
}


@dataclass(frozen=True)
class Limits:
    """What one request may carry, and how requests are gathered into batches."""

    max_texts: int = 256  # texts in one request
    max_chars: int = 5000  # characters in one text (about 1,250 tokens)
    max_body_bytes: int = 1 << 20  # bytes in one request body
    # tokens one request may have read, guessed (`token_guess`): long texts are read whole, so
    # this, not the characters, bounds a request's cost (256 texts of 128 tokens)
    max_tokens: int = 32_768
    batch_window_s: float = 0.001  # how long the first request of a batch waits for others
    # tokens in one batch, guessed (`token_guess`): a 1 MB request takes 12 batches or more, and a
    # request sent during it waits for 2 at most (the one being labeled, then its own)
    batch_tokens: int = 2048


def token_guess(encoder: dict[str, Any]) -> Callable[[str], int]:
    """A text's tokens, guessed from its length without tokenizing it (the classifier tokenizes
    each text once, after the batch is cut): about 4 characters a token, at most `max_length` when
    the encoder truncates long texts (older models did) rather than reading them in windows."""
    truncates = encoder.get("long_texts", "truncate") == "truncate"
    most = int(encoder["max_length"]) if truncates else sys.maxsize
    return lambda text: min(len(text) // 4 + 2, most)


def explain_cost(guess: Callable[[str], int]) -> Callable[[str], int]:
    """A text's cost to explain, in guessed tokens: the tokens of its variants (about
    BANZHAF_PER_WORD a word, at most MAX_VARIANTS, each keeping half the words; each token counted
    as a word). An /explain batch of `Limits.batch_tokens` then takes about as long as a /predict
    batch (one text at least: one of 41 guessed tokens, about 160 characters, fills it), so
    /predict waits no longer behind it."""
    return lambda text: guess(text) * min(BANZHAF_PER_WORD * guess(text), MAX_VARIANTS) // 2


async def read_texts(
    request: Request, limits: Limits, guess: Callable[[str], int] = lambda text: 0
) -> list[str]:
    """The texts of a /predict request, within `limits` (tokens by `guess`); anything wrong is an
    HTTPException with a 4xx code."""
    shape = '{"texts": ["...", ...]}'
    texts = (await read_json(request, PredictRequest, limits.max_body_bytes, shape)).texts
    if len(texts) > limits.max_texts:
        raise HTTPException(413, f"{len(texts)} texts; at most {limits.max_texts} per request")
    for i, text in enumerate(texts):
        if len(text) > limits.max_chars:
            raise HTTPException(
                413, f"texts.{i} has {len(text)} characters; at most {limits.max_chars}"
            )
    tokens = sum(map(guess, texts))
    if tokens > limits.max_tokens:
        raise HTTPException(
            413, f"about {tokens:,} tokens to read; at most {limits.max_tokens:,} per request"
        )
    return texts


def load_warm(model_dir: Path, engine: str) -> Classifier:
    """The classifier in `model_dir` on `engine`, after one pass (the first is slow; paid before
    serving)."""
    classifier = Classifier.load(model_dir, engine)
    classifier.predict_proba(["warm up"])
    return classifier


def create_app(model_dir: Path, limits: Limits | None = None, engine: str = "auto") -> FastAPI:
    """The app for the classifier in `model_dir` on `engine`, loaded (and warmed up) before it
    returns.

    Every torch call of the server, loading included, runs on one thread, the model thread:
    OpenMP gives each thread that runs torch its own team of worker threads, and a second team
    makes waiting threads sleep sooner, which slows small ops down (docs/serving.md, "Why the
    code is as it is").
    """
    limits = limits or Limits()
    model_thread = ThreadPoolExecutor(1, thread_name_prefix="model")
    classifier = model_thread.submit(load_warm, model_dir, engine).result()
    guess = token_guess(classifier.meta["encoder"])
    window, budget = limits.batch_window_s, limits.batch_tokens
    labeling = MicroBatcher(classifier.results, window, budget, model_thread, guess)
    explaining = MicroBatcher(classifier.explain, window, budget, model_thread, explain_cost(guess))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(batcher.run()) for batcher in (labeling, explaining)]
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        model_thread.shutdown()

    app = FastAPIOffline(
        title="sst2-probe",
        summary="Sentence labels from a frozen transformer encoder and a logistic regression.",
        description=(
            f"Classifier `{classifier.meta['run']}`; labels {', '.join(classifier.labels)}. "
            f"At most {limits.max_texts} texts a request, {limits.max_chars} characters a text, "
            f"about {limits.max_tokens} tokens a request, "
            f'{limits.max_body_bytes} bytes a body. Errors are JSON: `{{"error": "..."}}`.'
        ),
        lifespan=lifespan,
    )
    app.add_middleware(RequestIds)

    answer_errors_as_json(app)

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness, and how many batches and texts the server has labeled and explained."""
        explained = {"batches": explaining.batches, "texts": explaining.texts}
        labeled = {"batches": labeling.batches, "texts": labeling.texts}
        return {"status": "ok", **labeled, "explained": explained}

    @app.get("/model")
    async def model() -> dict[str, Any]:
        """The classifier's model.json: encoder settings, labels, training provenance."""
        return classifier.meta

    empty = 'an empty text gets {"text": "", "error": "empty text"}'
    read = partial(read_texts, limits=limits, guess=guess)
    texts_route(app, "/predict", read, labeling, PredictResponse, f"Label each text; {empty}.")
    texts_route(
        app,
        "/explain",
        read,
        explaining,
        ExplainResponse,
        "Label each text and weigh its words: `words` gives each word's span and its weight in "
        "the predicted class's log-odds (positive: toward the label; `weights`, with more than "
        "two classes: each class's). A text is labeled again with words removed, in about "
        f"{BANZHAF_PER_WORD} variants a word (at most {MAX_VARIANTS}): slower than /predict. "
        f"{empty.capitalize()}.",
    )
    return app


def texts_route(
    app: FastAPI,
    path: str,
    read: Callable[[Request], Awaitable[list[str]]],
    batcher: MicroBatcher,
    response: type[BaseModel],
    doc: str,
) -> None:
    """POST `path` (/predict, /explain): the texts `read` takes from a request, answered with
    {"results": rows} from `batcher`; a 500 for a request whose own texts fail."""

    async def answer(request: Request) -> dict[str, Any]:
        texts = await read(request)
        if not texts:
            return {"results": []}
        try:
            return {"results": await batcher.submit(texts, request.state.request_id)}
        except LabelingFailed:  # logged by the batcher, with the request's id
            raise HTTPException(500, INTERNAL) from None

    route = app.post(
        path,
        name=path.strip("/"),
        description=doc,
        response_model=response,
        response_model_exclude_none=True,
        **json_post(PredictRequest, ERRORS),
    )
    route(answer)


def main() -> None:
    """Command line: serve the classifier with uvicorn until Ctrl-C."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="classifier folder (default: newest in models/)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument("--engine", choices=ENGINES, default="auto", help="as predict.py's")
    parser.add_argument(
        "--threads",
        type=int,
        default=usable_cpus(),
        help="the encoder's threads (%(default)s: OMP_NUM_THREADS, else the CPUs); 1 on a machine "
        "busy with other work",
    )
    parser.add_argument(
        "--batch-window-ms",
        type=float,
        default=Limits.batch_window_s * 1000,
        help="a batch closes once this passes with no new request (%(default)g ms)",
    )
    args = parser.parse_args()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # both engines take their threads from it: torch when it is imported (by the torch engine's
    # loading, below), ONNX Runtime when its session is made; serve imports neither
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    limits = Limits(batch_window_s=args.batch_window_ms / 1000)
    app = create_app(args.model or latest_model(), limits, args.engine)
    print(f"serving on http://{args.host}:{args.port}/ (API docs at /docs; Ctrl-C stops)")
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    cli.run(main)
