"""What the service and the labeling page share: a JSON body read by hand, so every client
mistake is a 4xx answer ``{"error": "..."}`` (never FastAPI's own 422 shape), and its route docs."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

Body = TypeVar("Body", bound=BaseModel)


async def read_json(request: Request, model: type[Body], max_bytes: int, shape: str) -> Body:
    """The request's JSON body as `model`; anything wrong is an HTTPException with a 4xx code
    (`shape` is what the body should look like, for the 422 message)."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind != "application/json":
        raise HTTPException(415, f"Content-Type must be application/json, not {kind!r}")
    body = await read_body(request, max_bytes)
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise HTTPException(400, "the body is not UTF-8") from None
    except RecursionError:
        raise HTTPException(400, "the body's JSON is nested too deeply") from None
    except ValueError as err:
        raise HTTPException(400, f"the body is not JSON: {err}") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"])) or "body"
        raise HTTPException(422, f"expected {shape}; {where}: {first['msg']}") from None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to be over `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body has {declared} bytes; at most {limit}")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise HTTPException(413, f"the body is over {limit} bytes")
    except ClientDisconnect:
        raise HTTPException(400, "the client went away before the body ended") from None
    return bytes(body)


def json_post(model: type[BaseModel], errors: dict[int, str]) -> dict[str, Any]:
    """The options of a POST route that reads `model` with `read_json`: its body's schema and the
    4xx answers it may give, for /docs."""
    content = {"application/json": {"schema": model.model_json_schema()}}
    return {
        "openapi_extra": {"requestBody": {"required": True, "content": content}},
        "responses": {code: {"description": why} for code, why in errors.items()},
    }


def answer_errors_as_json(app: FastAPI) -> None:
    """Every HTTPException becomes ``{"error": detail}`` with its status code."""

    @app.exception_handler(StarletteHTTPException)
    async def client_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": err.detail}, err.status_code, headers=err.headers)
