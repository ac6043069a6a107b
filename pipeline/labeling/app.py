"""make label: a labeling page on 127.0.0.1 that refits the classifier after every answer.

    make label POOL=texts.txt OUT=labels.csv LABELS=negative,positive [PORT=8001] [CONFIG=...]

GET / is the page: one text at a time, a button per label (keys 1..K), skip (0) and undo (u),
the counts, the cross-validated accuracy so far with its interval, and the learning curve to
date. The page's HTTP API (documented at /docs):

- ``GET /next`` -> ``{"id", "text", "guess", "probabilities"}``: the text to label (the same one
  until it is answered; ``id`` null when the pool is used up); guess and probabilities are null
  before the classifier has two classes;
- ``POST /label`` with ``{"id", "label"}``: a label name, or ``"skip"``; answered once the
  answer is on disk;
- ``POST /undo``: takes back the last answer; its text is asked next;
- ``GET /stats``: counts, CV accuracy with its 95 % interval, the curve, the refits.

A request a client got wrong gets a 4xx answer ``{"error": "..."}``: 400 (not JSON), 404 (no
such text), 409 (the text is not the one asked, or answered already; nothing to undo), 413 (a
body over 4 KB), 415 (not application/json), 422 (not ``{"id": int, "label": str}``, or an
unknown label). OUT (.csv, .tsv or .jsonl) is a data file that ``make all DATA=`` takes as
train: name it ``train.csv`` in a folder with a dev file. Starting again with the same OUT
resumes; no text labeled or skipped is asked again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

from pipeline import PipelineError, cli
from pipeline.config import Config
from pipeline.labeling.journal import Journal, tsv_safe
from pipeline.labeling.session import SKIP, Conflict, Session
from pipeline.pool import load_pool
from pipeline.query import DEFAULT, STRATEGIES, check_strategy
from pipeline.serving.json_api import answer_errors_as_json, json_post, read_json

PAGE = Path(__file__).parent / "static" / "index.html"
MAX_BODY = 4096
ERRORS = {
    400: "the body is not UTF-8 or not JSON",
    404: "no text with this id in the pool",
    409: "the text is not the one being asked, or is answered already; nothing to undo",
    413: f"the body is over {MAX_BODY} bytes",
    415: "Content-Type is not application/json",
    422: 'the JSON is not {"id": int, "label": str}, or the label is unknown',
}


class LabelRequest(BaseModel):
    """The body of POST /label: the text's id (from GET /next) and a label name or "skip"."""

    model_config = ConfigDict(extra="forbid")
    id: StrictInt
    label: StrictStr


class NextText(BaseModel):
    """A text to label; `guess` and `probabilities` are null before the classifier can fit."""

    id: int | None
    text: str | None
    guess: str | None
    probabilities: dict[str, float] | None


async def read_label(request: Request) -> LabelRequest:
    """The body of a POST /label; anything wrong is an HTTPException with a 4xx code."""
    return await read_json(request, LabelRequest, MAX_BODY, '{"id": int, "label": str}')


def create_app(session: Session) -> FastAPI:
    """The page and the API of a labeling `session`."""
    app = FastAPIOffline(
        title="sst2-probe labeling",
        summary="Label a pool one text at a time; the classifier refits after every answer.",
        description=(
            f"Labels: {', '.join(session.names)}, or `{SKIP}`. Strategy `{session.strategy}`. "
            'Errors are JSON: `{"error": "..."}`.'
        ),
    )

    answer_errors_as_json(app)

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @app.get("/next", response_model=NextText)
    def next_text() -> dict[str, Any]:
        """The text to label next (the same until it is answered)."""
        return session.next()

    @app.post(
        "/label",
        **json_post(LabelRequest, ERRORS),
    )
    async def label(request: Request) -> dict[str, Any]:
        """Answer the text `id` with `label` (a label name or "skip"); on disk when answered."""
        body = await read_label(request)
        return await _call(session.label, body.id, body.label)

    @app.post("/undo", responses={409: {"description": "nothing to undo"}})
    async def undo() -> dict[str, Any]:
        """Take back the last answer; its text is asked next."""
        return await _call(session.undo)

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        """Counts per label, CV accuracy so far with its 95 % interval, the curve to date."""
        return session.stats()

    return app


async def _call(method: Any, *args: Any) -> dict[str, Any]:
    """Run a session method on a worker thread; its errors become 4xx answers."""
    from starlette.concurrency import run_in_threadpool

    try:
        return await run_in_threadpool(method, *args)
    except Conflict as err:
        raise HTTPException(409, str(err)) from None
    except KeyError as err:
        raise HTTPException(404, err.args[0]) from None
    except ValueError as err:
        raise HTTPException(422, str(err)) from None


def parse_labels(text: str) -> list[str]:
    """``negative,positive`` -> the class names, at least two, distinct, none "skip"."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if len(names) < 2 or len(set(names)) < len(names) or SKIP in names:
        raise PipelineError(f"LABELS={text!r}: give two or more distinct names (not {SKIP!r})")
    return names


def open_session(
    config: Config, pool_path: Path, out: Path, names: list[str], strategy: str, **options: Any
) -> Session:
    """Read the pool (encoded once, cached) and OUT, and start the session."""
    check_strategy(strategy)
    pool = load_pool(pool_path, config)
    if out.suffix == ".tsv" and not all(map(tsv_safe, pool.texts)):
        raise PipelineError(f"OUT={out}: the pool has texts with tabs or line breaks; use .csv")
    return Session(pool, names, Journal(out, names), config, strategy, **options)


def main() -> None:
    """Command line: serve the labeling page until Ctrl-C."""
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--pool", type=Path, required=True, help="the texts to label")
    parser.add_argument("--out", type=Path, required=True, help="the labels (.csv/.tsv/.jsonl)")
    parser.add_argument("--labels", required=True, help="class names, e.g. negative,positive")
    parser.add_argument("--strategy", default=DEFAULT, help=f"{', '.join(STRATEGIES)}")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="port to listen on (8001)")
    parser.add_argument(
        "--wait-ms", type=float, default=30, help="how long the next text waits for a refit (30)"
    )
    args = parser.parse_args()
    config = cli.config_from_args(args)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # refits are small: one BLAS thread, the other core serves the page
    session = open_session(
        config,
        args.pool,
        args.out,
        parse_labels(args.labels),
        args.strategy,
        wait_s=args.wait_ms / 1000,
        seed=config.data.seed,
    )
    stats = session.stats()
    print(
        f"labeling {stats['pool']} texts on http://{args.host}:{args.port}/ into {args.out} "
        f"({stats['labeled']} labeled, {stats['skipped']} skipped so far; Ctrl-C stops)",
        flush=True,
    )
    try:
        uvicorn.run(
            create_app(session), host=args.host, port=args.port, access_log=False,
            log_level="warning",
        )  # fmt: skip
    finally:
        session.close()


if __name__ == "__main__":
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    cli.run(main)
