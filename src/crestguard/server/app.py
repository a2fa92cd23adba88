"""The FastAPI app: OpenAI-compatible moderation, native batch classification, LiteLLM's guardrail API,
health and Prometheus metrics, all in front of one guard through one :class:`MicroBatcher`.

Example:
    >>> import crestguard, uvicorn
    >>> from crestguard.server import ServerConfig, create_app
    >>> app = create_app(crestguard.load_guard("crest-me5s"), ServerConfig(api_key="s3cret"))
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse as _JSONResponse
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from crestguard import __version__
from crestguard.errors import CrestGuardError
from crestguard.guard.guard import InputTooLargeError
from crestguard.server import schemas
from crestguard.server.batching import GuardLike, MicroBatcher, ShuttingDown
from crestguard.server.config import ServerConfig
from crestguard.server.metrics import Metrics

log = logging.getLogger("crestguard.server")

MODERATIONS, CLASSIFY, LITELLM = "/v1/moderations", "/v1/classify", "/beta/litellm_basic_guardrail_api"
#: Endpoints behind the API key; health, metrics and the docs stay open for probes and scrapers.
PROTECTED = frozenset({MODERATIONS, CLASSIFY, LITELLM})
_KNOWN = PROTECTED | {"/healthz", "/metrics", "/docs", "/openapi.json"}
_ERRORS = {code: {"model": schemas.ErrorResponse} for code in (401, 413, 422, 500, 503)}


class JSONResponse(_JSONResponse):
    """JSON that can carry any ``str``: a caller's text may hold lone surrogates (``"\\ud800"`` is valid JSON), which
    UTF-8 cannot encode; such a body is written with ASCII escapes instead (``\\ud800`` again), never a 500."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


class APIError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers
        self.body = schemas.error_body(message, type_, code, param)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


class _Observed:
    """ASGI middleware: in-flight gauge, request counts and latency per endpoint."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        endpoint = scope["path"] if scope["path"] in _KNOWN else "other"
        status = 500
        started = time.perf_counter()

        async def send_observed(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_observed)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)


class _Admission:
    """ASGI middleware: API-key check (401), then the body size limit (413), before any parsing.

    The key is accepted as ``Authorization: Bearer <key>`` (what the ``openai`` client sends) or ``x-api-key``
    (what LiteLLM's guardrail hooks can be configured to send).
    """

    def __init__(self, app, config: ServerConfig):
        self.app, self.config = app, config
        self.key = config.api_key.encode() if config.api_key else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.key and scope["path"] in PROTECTED and not self._authorized(headers):
            err = APIError(401, "Missing or wrong API key: send the header 'Authorization: Bearer <key>' "
                                "(or 'x-api-key: <key>').",
                           code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
            return await err.response()(scope, receive, send)
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        limit = self.config.max_body_bytes
        declared = headers.get(b"content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return await self._too_large(int(declared), scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > limit:
                return await self._too_large(size, scope, receive, send, at_least=more)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() == b"bearer":
            return hmac.compare_digest(token.strip(), self.key)
        return hmac.compare_digest(headers.get(b"x-api-key", b""), self.key)

    async def _too_large(self, size: int, scope, receive, send, at_least: bool = False):
        what = f"more than {size:,}" if at_least else f"{size:,}"
        err = APIError(413, f"The request body is {what} bytes; this server accepts at most "
                            f"{self.config.max_body_bytes:,} (--max-body-bytes).", code="request_too_large")
        await err.response()(scope, receive, send)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """One readable sentence per problem, and the first offending parameter."""
    parts, param = [], None
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "invalid JSON")
            parts.append(f"Malformed JSON in the request body at character {loc[0] if loc else '?'}: {reason}.")
            continue
        param = param or (".".join(loc) or None)
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{'.'.join(loc) or 'body'}: {msg}")
    return " ".join(parts) if len(parts) == 1 else "; ".join(parts), param


def create_app(guard: GuardLike, config: ServerConfig | None = None) -> FastAPI:
    """Build the app around ``guard`` (anything with ``name`` and ``check_batch``).

    Args:
        guard: the guard to serve, e.g. :func:`crestguard.load_guard` ``("crest-me5s")``.
        config: batching, auth, size limit and failure policy (defaults: :class:`ServerConfig`).

    Returns:
        A FastAPI app; its lifespan starts the micro-batcher and, on shutdown, drains it.
    """
    config = config or ServerConfig()
    metrics = Metrics()
    batcher = MicroBatcher(guard, config.max_batch, config.max_wait_ms, metrics)
    model_name = str(getattr(guard, "name", type(guard).__name__))

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await batcher.start()
        log.info("serving %s (max batch %d, max wait %.1f ms, fail-%s)", model_name, config.max_batch,
                 config.max_wait_ms, "closed" if config.fail_closed else "open")
        yield
        pending = batcher.depth
        await batcher.stop()
        log.info("shut down after draining %d queued request(s)", pending)

    app = FastAPI(
        title="CREST Guard", version=__version__, lifespan=lifespan,
        description="Multilingual prompt-safety classification. `/v1/moderations` speaks OpenAI's moderation API; "
                    "`/v1/classify` returns native verdicts; `/beta/litellm_basic_guardrail_api` is LiteLLM's "
                    "Generic Guardrail API. With an API key configured, these three need "
                    "`Authorization: Bearer <key>`.",
    )
    app.state.guard, app.state.config, app.state.metrics, app.state.batcher = guard, config, metrics, batcher
    app.add_middleware(_Admission, config=config)
    app.add_middleware(_Observed, metrics=metrics)  # added last = outermost: counts 401s and 413s too

    @app.exception_handler(APIError)
    async def _api_error(_request: Request, exc: APIError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        message, param = _validation_message(exc)
        return JSONResponse(schemas.error_body(message, code="invalid_request", param=param), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException):
        return JSONResponse(schemas.error_body(str(exc.detail), code=str(exc.status_code)),
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    async def judge(texts: list[str]) -> list[Any]:
        """Verdicts for ``texts`` through the batcher, with the server's failure policy applied."""
        try:
            verdicts = await batcher.submit(texts)
        except ShuttingDown as exc:
            raise APIError(503, str(exc), "server_error", "shutting_down") from exc
        except InputTooLargeError as exc:  # the guard's own size cap (max_chars / max_tokens)
            raise APIError(413, str(exc), code="input_too_large") from exc
        except CrestGuardError as exc:  # any other input the guard refuses
            raise APIError(422, str(exc), code="invalid_input") from exc
        except Exception as exc:  # noqa: BLE001 - the failure policy decides
            reason = f"guard error: {type(exc).__name__}: {exc}"
            log.error("model call failed (%s): %s", "flagging" if config.fail_closed else "500", reason)
            if not config.fail_closed:
                raise APIError(500, f"The guard failed on this request ({reason}).", "server_error",
                               "guard_error") from exc
            metrics.texts.labels("failed_closed").inc(len(texts))
            return [schemas.Failure(f"failed closed on {reason}")] * len(texts)
        flagged = sum(bool(v.unsafe) for v in verdicts)
        metrics.texts.labels("flagged").inc(flagged)
        metrics.texts.labels("passed").inc(len(verdicts) - flagged)
        return verdicts

    @app.post(MODERATIONS, response_model=schemas.ModerationResponse, responses=_ERRORS, tags=["OpenAI"])
    async def moderations(body: schemas.ModerationRequest):
        """OpenAI's moderation endpoint: one result per input; ``flagged`` is CREST Guard's unsafe verdict."""
        items = body.items()
        verdicts = await judge([text for text, _ in items])
        return JSONResponse({
            "id": f"modr-{uuid.uuid4().hex}", "model": model_name,
            "results": [schemas.moderation_result(v, images) for v, (_, images) in zip(verdicts, items)],
        })

    @app.post(CLASSIFY, response_model=schemas.ClassifyResponse, responses=_ERRORS, tags=["native"])
    async def classify(body: schemas.ClassifyRequest):
        """Native verdicts for a batch of texts (score, threshold, language, cluster, windows...)."""
        verdicts = await judge(body.texts)
        return JSONResponse({"model": model_name,
                             "results": [schemas.classify_result(v, body.include_text) for v in verdicts]})

    @app.post(LITELLM, response_model=schemas.LiteLLMGuardrailResponse, responses=_ERRORS, tags=["LiteLLM"])
    async def litellm_guardrail(body: schemas.LiteLLMGuardrailRequest):
        """LiteLLM's Generic Guardrail API: ``BLOCKED`` when any text is unsafe, else ``NONE``."""
        verdicts = await judge(body.texts)
        return JSONResponse(schemas.litellm_result(verdicts, len(body.images or ())))

    @app.get("/healthz", tags=["operations"])
    async def healthz():
        """Liveness and readiness: 200 while serving, 503 while draining for shutdown."""
        state = {"status": "draining" if batcher.closing else "ok", "model": model_name,
                 "backend": getattr(guard, "backend", None), "queue_depth": batcher.depth,
                 "max_batch": config.max_batch, "max_wait_ms": config.max_wait_ms,
                 "fail_closed": config.fail_closed, "auth": config.api_key is not None, "version": __version__}
        return JSONResponse(state, status_code=503 if batcher.closing else 200)

    @app.get("/metrics", tags=["operations"])
    async def prometheus_metrics():
        """Prometheus exposition: requests, latencies, batch sizes, flagged counts, queue depth."""
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    return app
