"""The JSON API behind every page; ``/api/openapi.json`` describes it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from headwater.web import models
from headwater.web.security import (
    SESSION_COOKIE,
    check_same_origin,
    check_token,
    check_write,
    session_value,
)


def readable(request: Request) -> None:
    """With a token, every API request must carry it (or the session cookie)."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    check_token(headers, request.app.state.web.token)


router = APIRouter(prefix="/api", dependencies=[Depends(readable)],
                   responses={401: {"model": models.ErrorBody,
                                    "description": "The token is missing or wrong"}})
# the one way in without the token: trading it for the session cookie
session_router = APIRouter(prefix="/api")

NAME = Path(description="A node's name.", min_length=1, max_length=500)
RUN_ID = Path(description="A run's id.", min_length=1, max_length=100)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {400: "Bad request", 401: "The token is missing or wrong",
            403: "Refused: a cross-site request", 404: "No such node, run or table",
            409: "A run is in progress, or the warehouse is busy",
            415: "The body must be JSON", 422: "The request or the project is invalid"}
    return {c: {"model": models.ErrorBody, "description": text[c]} for c in codes}


def _app(request: Request) -> Any:
    return request.app.state.web


def writable(request: Request) -> None:
    """Token and same-origin rules for state-changing requests."""
    web = _app(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    check_write(headers, scheme=request.url.scheme, token=web.token)


@session_router.post(
    "/session", response_model=models.Session, summary="Trade the token for a session cookie",
    description="The browser UI sends the token once and gets an HttpOnly, SameSite=Strict "
    "cookie (an HMAC of the token, never the token) that later requests carry. Needs a JSON "
    "body from the UI's own origin (or no browser).",
    responses=_errors(400, 401, 403, 415, 422))
def start_session(request: Request, body: models.SessionRequest) -> JSONResponse:
    web = _app(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    check_same_origin(headers, scheme=request.url.scheme)
    response = JSONResponse({"token_required": web.token is not None})
    if web.token is not None:
        check_token({"x-headwater-token": body.token}, web.token)
        response.set_cookie(SESSION_COOKIE, session_value(web.token), httponly=True,
                            samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


@router.get("/info", response_model=models.Info, summary="The project and this server",
            responses=_errors(422))
def info(request: Request) -> dict[str, Any]:
    web = _app(request)
    result: dict[str, Any] = web.view.info(token_required=web.token is not None)
    return result


@router.get("/graph", response_model=models.Graph, summary="Every node with its status",
            description="Nodes in topological order, laid out in layers (x, y, w, h), each "
            "with its status: fresh, stale, running, failed or deferred.",
            responses=_errors(422))
def graph(request: Request) -> dict[str, Any]:
    result: dict[str, Any] = _app(request).view.graph()
    return result


@router.get("/plan", response_model=models.PlanBody, summary="What a run would do, and why",
            responses=_errors(422))
def plan(request: Request) -> dict[str, Any]:
    result: dict[str, Any] = _app(request).view.plan_json()
    return result


@router.get("/nodes/{name}", response_model=models.NodeDetail, summary="One node",
            description="Description, code, columns with their lineage, checks with their "
            "last results and the node's run history.",
            responses=_errors(404, 422))
def node(request: Request, name: str = NAME) -> dict[str, Any]:
    view = _app(request).view
    result: dict[str, Any] = view.node(view.resolve(name))
    return result


@router.get("/nodes/{name}/preview", response_model=models.Preview,
            summary="The first rows of a node's published table (read-only)",
            responses=_errors(404, 409, 422))
def preview(
    request: Request,
    name: str = NAME,
    limit: int = Query(100, ge=1, le=100, description="Rows to return (at most 100)."),
) -> dict[str, Any]:
    view = _app(request).view
    result: dict[str, Any] = view.preview(view.resolve(name), limit)
    return result


@router.get("/runs", response_model=list[models.RunSummary], summary="Recent runs, newest first",
            responses=_errors(422))
def runs(
    request: Request,
    limit: int = Query(20, ge=1, le=200, description="How many runs."),
) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = _app(request).view.runs(limit)
    return result


@router.get("/runs/current", response_model=models.LiveRun | None,
            summary="The run this server is doing, or the last one it did")
def current_run(request: Request) -> dict[str, Any] | None:
    job = _app(request).manager.current()
    return job.to_json() if job is not None else None


@router.get("/runs/{run_id}", response_model=models.RunDetail,
            summary="One run with its nodes (for the timeline)", responses=_errors(404, 422))
def run_detail(request: Request, run_id: str = RUN_ID) -> dict[str, Any]:
    result: dict[str, Any] = _app(request).view.run(run_id)
    return result


@router.post("/runs", status_code=202, response_model=models.LiveRun,
             summary="Start a run (the whole project, or a selection)",
             description="Needs the server's token when it has one (Authorization: Bearer or "
             "X-Headwater-Token), a JSON body and, from a browser, the UI's own origin. "
             "Answers once the run is past planning; its progress is streamed on /api/events.",
             dependencies=[Depends(writable)],
             responses=_errors(400, 401, 403, 404, 409, 415, 422))
def start_run(request: Request, body: models.RunRequest) -> JSONResponse:
    web = _app(request)
    job = web.manager.start(body.select or None, exclude=body.exclude or None,
                            full_refresh=body.full_refresh)
    web.view.invalidate()
    return JSONResponse(job.to_json(), status_code=202)


@router.get("/events", summary="Live run progress (server-sent events)",
            description="A text/event-stream: `hello` (the current run) on connect, then "
            "`run_requested`, `run_started`, `node_started`, `node_finished`, `run_finished` "
            "and `run_error`, each with a JSON `data` line.",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "The event stream"}})
async def events(request: Request) -> StreamingResponse:
    web = _app(request)
    job = web.manager.current()
    first = web.events.format("hello", {"run": job.to_json() if job is not None else None})
    stream = web.events.stream(first, request.is_disconnected, web.closing)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
