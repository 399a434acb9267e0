"""The FastAPI application of ``gesco serve``.

Endpoints (OpenAPI schema at ``/openapi.json``, browsable at ``/docs``):

- ``POST /v1/regenerate?seed=S``: body a wire message (:mod:`gesco.serve.wire`, ``application/octet-stream``);
  answers JSON: the regenerated image as base64 PNG, the sigma used (as reported or estimated), the map denoiser,
  the sampler, the seconds spent, the batch it shared and the message's tag. 400: a malformed message (the typed
  error's name and text); 422: a message for another table or image size; 503: the queue is full (``Retry-After``).
- ``GET /``: the web demo page; ``GET /v1/demo/options``, ``POST /v1/demo``, ``GET /v1/demo/{id}``:
  its transmissions (:mod:`gesco.serve.demo_jobs`).
- ``GET /healthz`` (never behind the token) and ``GET /metrics`` (Prometheus text).

Every request passes :class:`Guard` first: with a token set, any path but ``/healthz`` needs
``Authorization: Bearer <token>`` (or ``?token=`` for the page, which a browser opens without headers) or gets
401; a body over ``max_body_bytes`` gets 413 before the application reads it.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import importlib.resources
import logging
import os
import time
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Literal
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from gesco import __version__
from gesco.channel.quality import QUALITY_KINDS, ChannelQuality
from gesco.channel.registry import channel_class
from gesco.constants import CHANNEL_NAMES
from gesco.serve.batching import Batcher, BatcherClosedError, IncompatibleMessageError, QueueFullError
from gesco.serve.demo_jobs import DemoRequest, DemoRunner, png_base64
from gesco.serve.wire import WireFormatError, WireLimits, decode

#: Paths open without the token: what a load balancer or an orchestrator polls.
OPEN_PATHS = frozenset({"/healthz"})
MAX_SEED = 2**63 - 1
log = logging.getLogger("gesco.serve")


@dataclass(frozen=True)
class ServeSettings:
    """Attributes:
    token: required on every path but ``/healthz`` (None: no token).
    max_body_bytes: larger request bodies are answered 413.
    limits: what the wire parser accepts.
    model: the served model's name or folder, for health and logs.
    """

    token: str | None = None
    max_body_bytes: int = 8 * 2**20
    limits: WireLimits = WireLimits()
    model: str = ""


class Guard:
    """ASGI middleware: counts responses by status, checks the token, bounds request bodies."""

    def __init__(self, app, *, settings: ServeSettings, statuses: Counter):
        self.app, self.settings, self.statuses = app, settings, statuses

    def _authorized(self, scope) -> bool:
        token = self.settings.token
        if token is None or scope["path"] in OPEN_PATHS:
            return True
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"").decode("latin-1")
        if given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode()):
            return True
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return any(hmac.compare_digest(value.encode(), token.encode()) for value in query.get("token", []))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def counting_send(message):
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
            await send(message)

        async def answer(status: int, detail: str, headers: dict[str, str] | None = None):
            response = JSONResponse({"error": "http", "detail": detail}, status_code=status, headers=headers)
            await response(scope, receive, counting_send)

        if not self._authorized(scope):
            return await answer(401, "missing or wrong token", {"WWW-Authenticate": "Bearer"})
        limit = self.settings.max_body_bytes
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await answer(413, f"the body exceeds {limit} bytes" if length.isdigit() else "bad Content-Length")
        # The body is read here, up to the limit, and handed on whole: nothing past the limit is ever buffered.
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                return await answer(413, f"the body exceeds {limit} bytes")
            if not message.get("more_body"):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, counting_send)


# --- schemas (the OpenAPI document) ---


class QualityView(BaseModel):
    kind: str
    value: float


class RegenerateResponse(BaseModel):
    tag: str = Field(description="the message's tag, as a decimal string (64 bits exceed a JSON number)")
    image_png: str = Field(description="the regenerated image, base64 PNG")
    height: int
    width: int
    kind: str = Field(description="analog or digital")
    channel: str
    quality: QualityView
    sigma: float = Field(description="the noise level the image generator was told")
    sigma_source: str = Field(description="channel (reported in the message) or blind (estimated from the map)")
    map_denoiser: str
    sampler: dict
    seconds: float = Field(description="the batch's regeneration time")
    queued_seconds: float
    batch_size: int


class ErrorResponse(BaseModel):
    error: str
    detail: str


class DemoStart(BaseModel):
    scene: int | None = Field(None, ge=0, le=2**31 - 1, description="a synthetic scene's seed")
    label_png: str | None = Field(None, description="base64 label map PNG, instead of a scene")
    channel: Literal[CHANNEL_NAMES] = "awgn"  # type: ignore[valid-type]
    fading: Literal["awgn", "rayleigh"] | None = None
    quality_kind: Literal[QUALITY_KINDS] = "psnr_label"  # type: ignore[valid-type]
    quality: float = 10.0
    seed: int = Field(0, ge=0, le=MAX_SEED)


class DemoJobView(BaseModel):
    id: str
    state: str
    stage: str
    done: int
    total: int
    images: dict[str, str]
    notes: list[str]
    sigma: float | None
    seconds: float | None
    error: str | None


def _error(status: int, err: Exception, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": type(err).__name__, "detail": str(err)}, status_code=status, headers=headers)


def _resident_bytes() -> int:
    """The process's resident set size now (Linux), 0 where /proc is absent."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def build_app(batcher: Batcher, *, demo: DemoRunner | None = None, settings: ServeSettings = ServeSettings()):
    """The application around a running :class:`Batcher` (and the page's :class:`DemoRunner`); both are closed,
    after the last request, when the application shuts down."""
    statuses: Counter = Counter()
    receiver = batcher.receiver
    started = time.time()

    @asynccontextmanager
    async def lifespan(_app):
        yield
        # Uvicorn gets here after the in-flight requests have been answered: the queue is empty.
        if demo is not None:
            await run_in_threadpool(demo.close)
        await run_in_threadpool(batcher.close)
        log.info("stopped after %d images in %d batches", batcher.stats.images, batcher.stats.batches)

    app = FastAPI(
        title="gesco serve",
        version=__version__,
        description="The GESCO receiver as a service: send a received semantic map, get the regenerated image.",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def refused_request(_request: Request, err: RequestValidationError):
        # One error shape for every refusal (ErrorResponse), FastAPI's field list flattened into its detail.
        fields = "; ".join(f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in err.errors())
        return JSONResponse({"error": "RequestValidationError", "detail": fields}, status_code=422)

    @app.post(
        "/v1/regenerate",
        response_model=RegenerateResponse,
        responses={
            400: {"model": ErrorResponse},
            413: {"model": ErrorResponse},
            422: {"model": ErrorResponse},
            503: {"model": ErrorResponse},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def regenerate(request: Request, seed: int = Query(0, ge=0, le=MAX_SEED)):
        """Regenerate the image of one wire message (see ``gesco.serve.wire``)."""
        body = await request.body()
        try:
            message = await run_in_threadpool(decode, body, settings.limits)
            future = batcher.submit(message, seed=seed)
        except WireFormatError as err:
            return _error(400, err)
        except IncompatibleMessageError as err:
            return _error(422, err)
        except (QueueFullError, BatcherClosedError) as err:
            return _error(503, err, {"Retry-After": "1"})
        result = await asyncio.wrap_future(future)
        height, width = result.image.shape[:2]
        return RegenerateResponse(
            tag=str(message.tag),
            image_png=await run_in_threadpool(png_base64, result.image),
            height=height,
            width=width,
            kind=message.kind,
            channel=message.channel,
            quality=QualityView(kind=message.quality.kind, value=message.quality.values[0]),
            sigma=result.sigma,
            sigma_source=result.sigma_source,
            map_denoiser=result.map_denoiser,
            sampler=batcher.sampler.to_dict(),
            seconds=round(result.seconds, 4),
            queued_seconds=round(result.queued_seconds, 4),
            batch_size=result.batch_size,
        )

    @app.get("/healthz")
    async def health():
        """Liveness and what is served (open without the token)."""
        return {
            "status": "ok",
            "version": __version__,
            "model": settings.model,
            "table": receiver.table.name,
            "image_size": list(receiver.config.image_size),
            "waiting": batcher.waiting,
        }

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics():
        """Counters and gauges in the Prometheus text format."""
        stats = batcher.stats
        lines = [
            "# TYPE gesco_http_responses_total counter",
            *(f'gesco_http_responses_total{{status="{code}"}} {count}' for code, count in sorted(statuses.items())),
            "# TYPE gesco_images_total counter",
            f"gesco_images_total {stats.images}",
            "# TYPE gesco_batches_total counter",
            f"gesco_batches_total {stats.batches}",
            "# TYPE gesco_failed_images_total counter",
            f"gesco_failed_images_total {stats.failed}",
            "# TYPE gesco_rejected_queue_full_total counter",
            f"gesco_rejected_queue_full_total {stats.rejected_full}",
            "# TYPE gesco_busy_seconds_total counter",
            f"gesco_busy_seconds_total {stats.busy_seconds:.3f}",
            "# TYPE gesco_queue_waiting gauge",
            f"gesco_queue_waiting {batcher.waiting}",
            "# TYPE gesco_in_flight gauge",
            f"gesco_in_flight {batcher.in_flight}",
            "# TYPE gesco_resident_memory_bytes gauge",
            f"gesco_resident_memory_bytes {_resident_bytes()}",
            "# TYPE gesco_uptime_seconds gauge",
            f"gesco_uptime_seconds {time.time() - started:.1f}",
        ]
        return "\n".join(lines) + "\n"

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(_page())

    @app.get("/v1/demo/options")
    async def demo_options():
        """What the page offers: channels, quality kinds, the columns this server fills."""
        return {
            "channels": list(CHANNEL_NAMES),
            "accepts": {name: list(channel_class(name).accepts) for name in CHANNEL_NAMES},
            "columns": demo.columns if demo is not None else [],
            "image_size": list(receiver.config.image_size),
            "table": receiver.table.name,
            "sampler": batcher.sampler.to_dict(),
        }

    @app.post(
        "/v1/demo",
        status_code=202,
        response_model=DemoJobView,
        responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
    )
    async def demo_start(start: DemoStart):
        """Start one transmission of the page; poll ``/v1/demo/{id}`` for its progress and images."""
        if demo is None:
            raise HTTPException(404, "this server runs without the page")
        try:
            quality = ChannelQuality(start.quality_kind, start.quality)
            if quality.kind not in channel_class(start.channel).accepts:
                raise ValueError(
                    f"the {start.channel} channel takes {list(channel_class(start.channel).accepts)}, "
                    f"not {quality.kind}"
                )
            label_png = None if start.label_png is None else base64.b64decode(start.label_png, validate=True)
            if (start.scene is None) == (label_png is None):
                raise ValueError("give either a synthetic scene or a label map PNG")
            job = demo.start(DemoRequest(start.scene, label_png, start.channel, start.fading, quality, start.seed))
        except QueueFullError as err:
            return _error(503, err, {"Retry-After": "2"})
        except ValueError as err:  # binascii.Error is a ValueError
            return _error(422, err)
        return DemoJobView(**asdict(job))

    @app.get("/v1/demo/{job_id}", response_model=DemoJobView, responses={404: {"model": ErrorResponse}})
    async def demo_job(job_id: str):
        """A transmission's progress, and its images once done."""
        job = None if demo is None else demo.get(job_id)
        if job is None:
            return JSONResponse({"error": "NotFound", "detail": f"no transmission {job_id!r}"}, status_code=404)
        return DemoJobView(**asdict(job))

    return Guard(app, settings=settings, statuses=statuses)


def _page() -> str:
    """The page as one document, its style and script inlined: a browser given ``/?token=`` fetches nothing else
    without the token."""
    folder = importlib.resources.files("gesco.serve").joinpath("page")
    html = folder.joinpath("index.html").read_text()
    style, script = folder.joinpath("style.css").read_text(), folder.joinpath("app.js").read_text()
    html = html.replace('<link rel="stylesheet" href="style.css">', f"<style>\n{style}</style>")
    return html.replace('<script src="app.js"></script>', f"<script>\n{script}</script>")
