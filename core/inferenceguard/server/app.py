"""The OpenAI-compatible HTTP app: ``create_app(guard)`` → a FastAPI application.

Usage::

    import uvicorn
    from inferenceguard import InferenceGuard
    from inferenceguard.server import create_app

    app = create_app(
        InferenceGuard.from_defaults(), api_key="s3cret", max_queue=16, model_name="inferenceguard"
    )
    uvicorn.run(app, host="127.0.0.1", port=8000)

    # any OpenAI client:
    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="s3cret")
    reply = client.chat.completions.create(
        model="inferenceguard", messages=[{"role": "user", "content": "Hi"}]
    )
    reply.choices[0].message.content, reply.safety["safe"]

Endpoints: ``POST /v1/chat/completions`` (plain or ``stream=true``), ``GET /v1/models``,
``GET /v1/models/{id}``, ``GET /health`` (never needs the key). A request's ``model`` must be
the served name (else 404, as ``GET /v1/models/<it>``). A non-streamed answer carries the
safety verdict also in the ``X-InferenceGuard-Safety`` header (compact JSON), for clients
that do not surface the body's ``safety`` field; a stream carries it in the ``safety``
field of the chunk with the finish reason. ``tool_choice="required"`` or a named tool is
enforced by checking the answer: without the demanded call the response is a 422
(``code: tool_choice_not_met``), never prose with a 200; a stream cannot take text back,
so a stream with a forced ``tool_choice`` is a 400.

How a request runs: the body is validated (:mod:`.schemas`), a place in the
:class:`~.queue.AdmissionQueue` is taken (or 429 with ``Retry-After``), then the guard's
async API (:meth:`InferenceGuard.astream <inferenceguard.InferenceGuard.astream>`) runs the
search step by step in worker threads, so the event loop stays free; the requests running
at once share every batched forward and scorer call (N clients, one batch:
:mod:`inferenceguard.search.scheduler`). While the client
waits, the server watches its connection: a client that goes away cancels its search at
the next step boundary and frees its place.

A streamed response is sent once the first verified text (or the final result) exists, so
that bad requests still get a proper 4xx status rather than an error inside a 200 stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from .._version import __version__
from ..build import LazyGuard
from ..errors import InferenceGuardError, SafetyExhaustedError
from ..guard import InferenceGuard
from ..reply import ReplyAssembler, final_reply
from ..result import GuardResult, StreamChunk
from .convert import (
    ChunkFormat,
    GuardCall,
    completion,
    error_body,
    error_response,
    guard_call,
    safety_header,
    tool_choice_unmet,
    validation_message,
)
from .queue import AdmissionQueue, QueueFullError, Ticket
from .schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ErrorResponse,
    ModelCard,
    ModelList,
)

__all__ = ["create_app"]

logger = logging.getLogger("inferenceguard.server")

T = TypeVar("T")

#: Response header with the safety report's verdict (compact JSON) of a non-streamed answer.
SAFETY_HEADER = "X-InferenceGuard-Safety"

#: Bodies larger than this are refused with 413 before they are read.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 422, 429, 500)
}


def create_app(
    guard: InferenceGuard | LazyGuard,
    *,
    api_key: str | None = None,
    max_concurrent: int = 4,
    max_queue: int = 32,
    model_name: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """Build the OpenAI-compatible app around one guard.

    Args:
        guard: the :class:`~inferenceguard.InferenceGuard` that answers every request, or a
            :class:`~inferenceguard.LazyGuard` that builds it on the first request (in a
            worker thread, once); its ``config`` holds the server's safety and search
            settings (clients may change only the sampling fields listed in
            :func:`.convert.guard_call`).
        api_key: when set, every ``/v1`` request needs ``Authorization: Bearer <api_key>``
            (else 401). ``/health`` stays open.
        max_concurrent: requests running at once; their rows share each batched forward.
        max_queue: requests waiting for a running slot; more are refused with 429.
        model_name: the name in ``/v1/models`` and in responses (default: the LM's id).
        max_body_bytes: larger request bodies are refused with 413.

    Returns:
        The FastAPI application; serve it with uvicorn (``inferenceguard serve`` does).
    """
    queue = AdmissionQueue(max_concurrent=max_concurrent, max_queue=max_queue)
    lazy = guard if isinstance(guard, LazyGuard) else LazyGuard(guard)
    name = model_name or lazy.model_name
    app = FastAPI(
        title="InferenceGuard",
        version=__version__,
        summary="OpenAI-compatible chat completions, almost surely safe w.r.t. a cost model.",
    )
    app.state.guard = guard
    app.state.queue = queue
    app.state.model_name = name
    app.add_middleware(_GateMiddleware, api_key=api_key, max_body_bytes=max_body_bytes)
    _add_error_handlers(app)
    _add_model_routes(app, name, queue)
    _add_chat_route(app, lazy, queue, name)
    return app


def _add_model_routes(app: FastAPI, name: str, queue: AdmissionQueue) -> None:
    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness and load: the model's name and the admission counters."""
        return {"status": "ok", "model": name, **queue.snapshot()}

    @app.get("/v1/models", responses=_ERRORS)
    async def list_models() -> ModelList:
        """The one served model."""
        return ModelList(data=[ModelCard(id=name)])

    @app.get("/v1/models/{model_id:path}", response_model=ModelCard, responses=_ERRORS)
    async def get_model(model_id: str) -> Any:
        """The served model, if ``model_id`` names it."""
        if model_id != name:
            return _model_not_found(model_id, param=None)
        return ModelCard(id=name)


def _add_chat_route(app: FastAPI, lazy: LazyGuard, queue: AdmissionQueue, name: str) -> None:
    @app.post(
        "/v1/chat/completions",
        response_model=None,
        responses={200: {"model": ChatCompletion}, **_ERRORS},
    )
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        """Answer a conversation; see the module docstring."""
        if body.model is not None and body.model != name:
            return _model_not_found(body.model, param="model")
        call = guard_call(body)
        # Loading models blocks: off the event loop, once (LazyGuard holds the lock).
        served = lazy.built or await asyncio.to_thread(lazy.get)
        ticket = queue.ticket()
        if call.stream:
            return await _stream(request, served, call, ticket, name)
        try:
            result = await _unless_disconnected(request, _generate(served, call, ticket))
        except _ClientGone:
            return Response(status_code=499)
        finally:
            ticket.release()
        return _completion_response(call, result, name)


def _completion_response(call: GuardCall, result: GuardResult, name: str) -> JSONResponse:
    """The non-streamed response: the completion, or 422 when a forced tool call is missing."""
    final = final_reply(
        result, parse_tools=call.parse_tools, parallel_tool_calls=call.parallel_tool_calls
    )
    headers = {SAFETY_HEADER: safety_header(result)}
    unmet = tool_choice_unmet(call, final)
    if unmet is not None:
        body = error_body(
            str(unmet),
            type="invalid_request_error",
            param="tool_choice",
            code="tool_choice_not_met",
        )
        return JSONResponse(body, 422, headers=headers)
    return JSONResponse(completion(final, model=name).model_dump(mode="json"), headers=headers)


def _model_not_found(model_id: str, *, param: str | None) -> JSONResponse:
    """The 404 of ``GET /v1/models/<id>`` and of a request for a model not served here."""
    body = error_body(
        f"The model {model_id!r} does not exist.",
        type="invalid_request_error",
        param=param,
        code="model_not_found",
    )
    return JSONResponse(body, 404)


# --------------------------------------------------------------------------- running
async def _generate(guard: InferenceGuard, call: GuardCall, ticket: Ticket) -> GuardResult:
    async with ticket:
        try:
            return await guard.agenerate(call.messages, **call.kwargs())
        except SafetyExhaustedError as exc:  # the server's config asked to raise: still a result
            return exc.result


class _SSEReply:
    """One streamed request: the guard's stream, through the reply assembler, as SSE text."""

    def __init__(self, guard: InferenceGuard, call: GuardCall, ticket: Ticket, model: str) -> None:
        self.assembler = ReplyAssembler(
            parse_tools=call.parse_tools, parallel_tool_calls=call.parallel_tool_calls
        )
        self.format = ChunkFormat(model=model, include_usage=call.include_usage)
        self.stream = guard.astream(call.messages, **call.kwargs())
        self.ticket = ticket

    def feed(self, item: StreamChunk) -> list[str]:
        """The SSE events of one guard chunk."""
        return [_sse(c) for e in self.assembler.feed(item) for c in self.format.chunks(e)]

    def finish(self, result: GuardResult) -> list[str]:
        """The closing SSE events for a result that came as ``SafetyExhaustedError``."""
        return [_sse(c) for e in self.assembler.finish(result) for c in self.format.chunks(e)]

    async def first(self) -> list[str]:
        """Wait for a slot and the first item, so request errors still get a 4xx status."""
        await self.ticket.acquire()
        try:
            return self.feed(await anext(self.stream))
        except SafetyExhaustedError as exc:
            return self.finish(exc.result)

    async def rest(self) -> AsyncIterator[str]:
        """The events after the first item, until the stream ends."""
        if self.assembler.final is not None:
            return
        try:
            async for item in self.stream:
                for event in self.feed(item):
                    yield event
        except SafetyExhaustedError as exc:
            for event in self.finish(exc.result):
                yield event

    async def close(self) -> None:
        """Free the admission slot and stop the search (idempotent)."""
        self.ticket.release()
        await self.stream.aclose()


async def _stream(
    request: Request, guard: InferenceGuard, call: GuardCall, ticket: Ticket, model: str
) -> Response:
    reply = _SSEReply(guard, call, ticket, model)
    try:
        first = await _unless_disconnected(request, reply.first())
    except _ClientGone:
        await reply.close()
        return Response(status_code=499)
    except BaseException:
        await reply.close()
        raise

    async def events() -> AsyncIterator[str]:
        try:
            yield _sse(reply.format.start())
            for event in first:
                yield event
            try:
                async for event in reply.rest():
                    yield event
            except Exception as exc:
                # Headers are sent: report in-band, as OpenAI does, and end the stream.
                logger.error("stream failed", exc_info=exc)
                yield f"data: {json.dumps(error_response(exc)[1])}\n\n"
                return
            yield "data: [DONE]\n\n"
        finally:
            await reply.close()

    body = events()

    async def on_close() -> None:
        await body.aclose()
        await reply.close()

    return _EventStream(body, on_close=on_close)


def _sse(chunk: ChatCompletionChunk) -> str:
    data = json.dumps(chunk.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))
    return f"data: {data}\n\n"


class _ClientGone(Exception):
    """The client disconnected before the answer was ready."""


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(request: Request, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``; if the client disconnects first, cancel it and raise :class:`_ClientGone`."""
    work = asyncio.ensure_future(coro)
    watch = asyncio.ensure_future(_wait_for_disconnect(request.receive))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        work.cancel()
        watch.cancel()
        raise
    watch.cancel()
    if work.done():
        return work.result()
    work.cancel()
    await asyncio.wait({work})
    logger.info("client disconnected; request cancelled")
    raise _ClientGone


class _EventStream(StreamingResponse):
    """Server-sent events that stop (and clean up) as soon as the client disconnects.

    Starlette watches for disconnects only on servers older than ASGI 2.4; this does it
    always, and runs ``on_close`` however the response ends.
    """

    media_type = "text/event-stream"

    def __init__(
        self, content: AsyncIterator[str], *, on_close: Callable[[], Awaitable[None]]
    ) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def respond() -> None:
                    with contextlib.suppress(OSError):
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(respond)
                await _wait_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._on_close()


# --------------------------------------------------------------------------- gate + errors
class _GateMiddleware:
    """Bearer-token check on ``/v1`` and a body-size limit, before anything is read."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.api_key is not None and scope["path"].startswith("/v1"):
            auth = headers.get(b"authorization", b"")
            scheme, _, token = auth.partition(b" ")
            if scheme.lower() != b"bearer" or not secrets.compare_digest(
                token.strip(), self.api_key
            ):
                body = error_body(
                    "Incorrect API key provided." if auth else "No API key provided.",
                    type="invalid_request_error",
                    code="invalid_api_key",
                )
                response = JSONResponse(body, 401, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        length = headers.get(b"content-length", b"0")
        if length.isdigit() and int(length) > self.max_body_bytes:
            body = error_body(
                f"The request body has {int(length)} bytes; the limit is {self.max_body_bytes}.",
                type="invalid_request_error",
                code="request_too_large",
            )
            await JSONResponse(body, 413)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param, code = validation_message(exc.errors())
        body = error_body(message, type="invalid_request_error", param=param, code=code)
        return JSONResponse(body, 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"Unknown path {request.url.path!r}."
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return JSONResponse(
            error_body(detail, type=kind, code=code), exc.status_code, headers=exc.headers
        )

    @app.exception_handler(QueueFullError)
    async def busy(request: Request, exc: QueueFullError) -> JSONResponse:
        body = error_body(str(exc), type="rate_limit_error", code="queue_full")
        return JSONResponse(body, 429, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(InferenceGuardError)
    async def guard_error(request: Request, exc: InferenceGuardError) -> JSONResponse:
        status, body = error_response(exc)
        if status >= 500:
            logger.error("request failed: %s", exc)
        return JSONResponse(body, status)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error", exc_info=exc)
        return JSONResponse(error_response(exc)[1], 500)
