"""The ASGI application: ``create_app(project)`` for uvicorn, tests and schemathesis.

Everything the pages need is served from Headwater's own files (no CDN, no web fonts):
``static/`` at /static/ and, at /assets/, the stylesheet and helpers the docs site shares
(``headwater/docs/assets/shared.*``), so the UI works offline. A small ASGI middleware
(:class:`Shield`) checks the Host header, adds security headers and blanks any secret
value out of every response.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from headwater.engines.duckdb import WarehouseBusyError
from headwater.errors import HeadwaterError, LockedError, ProjectError, SelectionError
from headwater.web.events import Broadcaster
from headwater.web.routes import api, pages
from headwater.web.runs import RunInProgress, RunManager, WarehouseBusy, WarehouseGate
from headwater.web.security import AccessDenied, host_allowed
from headwater.web.views import NotFound, ProjectView

if TYPE_CHECKING:
    from headwater.api import Project

STATIC = Path(__file__).resolve().parent / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
MASK = b"***"
_MIN_SECRET = 4
SECRETS_TTL = 5.0

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class WebState:
    """What every route reaches through ``request.app.state.web``."""

    view: ProjectView
    manager: RunManager
    events: Broadcaster
    token: str | None
    secrets: SecretScanner
    closing: Callable[[], bool] = field(default=lambda: False)


def create_app(
    project: Project,
    *,
    token: str | None = None,
    trusted_hosts: list[str] | None = None,
) -> FastAPI:
    """The web UI and JSON API for ``project``.

    ``token``: when set, every API request needs it (or the session cookie). ``trusted_hosts``:
    the Host names accepted (None accepts any; :func:`headwater.web.serve` passes
    the loopback names when it listens on the loopback).
    """
    gate = WarehouseGate()
    events = Broadcaster()
    manager = RunManager(project.root, project.env, events, gate)
    view = ProjectView(project, gate, manager.current)
    manager.on_finish = view.invalidate  # pages reload on run_finished: plan afresh
    secrets = SecretScanner(project.root, extra=[token] if token else [])
    events.redact = secrets.redact_text
    web = WebState(view, manager, events, token, secrets)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        events.close()

    app = FastAPI(
        title="Headwater",
        version=_version(),
        description="The JSON API of `headwater serve`: the pipeline graph and node status, "
        "nodes with their columns, lineage and checks, run history, data previews, and "
        "starting runs. Live progress is streamed on `/api/events`.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN: not offline
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.web = web
    app.include_router(api.router)
    app.include_router(api.session_router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _error_handlers(app)
    app.add_middleware(Shield, trusted_hosts=trusted_hosts, secrets=secrets)
    return app


def _version() -> str:
    from headwater import __version__

    return __version__


STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),
    (SelectionError, 404),
    (RunInProgress, 409),
    (LockedError, 409),
    (WarehouseBusy, 409),
    (WarehouseBusyError, 409),
    (ProjectError, 422),
)


def _error_handlers(app: FastAPI) -> None:
    async def headwater_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HeadwaterError)
        status = exc.status if isinstance(exc, AccessDenied) else next(
            (code for cls, code in STATUS_OF if isinstance(exc, cls)), 400)
        message = exc.message
        if exc.location:
            message = f"{exc.location}: {message}"
        if isinstance(exc, WarehouseBusyError):
            message = "the warehouse is busy: a run is in progress (in another process)"
        headers = {"Retry-After": "5"} if status == 409 else None
        return JSONResponse({"error": message, "hint": exc.hint}, status_code=status,
                            headers=headers)

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
             "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"])
        return JSONResponse({"error": f"{where}: {first['msg']}" if where else first["msg"],
                             "hint": "see /api/openapi.json", "detail": problems},
                            status_code=422)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 400 and "pars" in detail:
            detail = "the body is not valid JSON"
        return JSONResponse({"error": detail, "hint": None}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    app.add_exception_handler(HeadwaterError, headwater_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)


class SecretScanner:
    """The secrets of the project (``headwater.core.secrets``: the values of its secret
    ``${VAR}``s, re-read every few seconds as its TOML files change) and ``extra`` ones
    (the UI's token), to blank out of every response."""

    def __init__(self, root: Path, extra: list[str] | None = None) -> None:
        self.root = root
        self.extra = [s for s in extra or [] if s]
        self._at = 0.0
        self._needles: list[tuple[bytes, bytes]] = []

    def needles(self) -> list[tuple[bytes, bytes]]:
        from headwater.core import secrets

        if time.monotonic() - self._at > SECRETS_TTL:
            for f in [self.root / "headwater.toml", *self.root.glob("sources/*.toml"),
                      *self.root.glob("sinks/*.toml")]:
                try:
                    secrets.learn_config(tomllib.loads(f.read_text("utf-8")), f)
                except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                    continue
            forms: set[bytes] = set()
            for v in self.extra:
                if len(v) >= _MIN_SECRET:
                    forms |= {f.encode("utf-8") for f in secrets.forms(v)}
            self._needles = [(n, MASK) for n in sorted(forms, key=len, reverse=True)]
            self._at = time.monotonic()
        return self._needles

    def redact(self, body: bytes) -> bytes:
        from headwater.core.secrets import redact_bytes

        for needle, mask in self.needles():
            if needle in body:
                body = body.replace(needle, mask)
        return redact_bytes(body)

    def redact_text(self, text: str) -> str:
        return self.redact(text.encode("utf-8")).decode("utf-8", errors="replace")


class Shield:
    """Host check, security headers and secret redaction for every HTTP response."""

    def __init__(self, app: ASGIApp, *, trusted_hosts: list[str] | None,
                 secrets: SecretScanner) -> None:
        self.app = app
        self.trusted = trusted_hosts
        self.secrets = secrets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if not host_allowed(headers.get("host"), self.trusted):
            body = json.dumps({"error": "unknown Host header: this server only answers to "
                               "its loopback address", "hint": "open http://127.0.0.1:PORT/"})
            await _send_plain(send, 403, body.encode())
            return
        path = scope.get("path", "")
        static = path.startswith("/static/") or path in pages.SHARED_ASSETS
        pending: Message | None = None

        async def guarded(message: Message) -> None:
            nonlocal pending
            if message["type"] == "http.response.start":
                pending = message
                return
            if message["type"] == "http.response.body" and pending is not None:
                start, pending = pending, None
                body = message.get("body", b"")
                hdrs = [(k, v) for k, v in start.get("headers", [])
                        if k.lower() not in (b"content-length",) or static
                        or message.get("more_body")]
                if not static and not message.get("more_body"):
                    body = self.secrets.redact(body)
                    hdrs.append((b"content-length", str(len(body)).encode()))
                    message = dict(message, body=body)
                present = {k.lower() for k, _ in hdrs}
                hdrs += [(k, v) for k, v in _security_headers(scope.get("path", ""))
                         if k not in present]
                await send(dict(start, headers=hdrs))
            await send(message)

        await self.app(scope, receive, guarded)


def _security_headers(path: str) -> list[tuple[bytes, bytes]]:
    out = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
           (b"x-frame-options", b"DENY"), (b"content-security-policy", CSP.encode())]
    if path.startswith("/api/"):
        out.append((b"cache-control", b"no-store"))
    return out


async def _send_plain(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
