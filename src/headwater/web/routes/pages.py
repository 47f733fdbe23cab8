"""The HTML pages: small shells whose scripts render the JSON API, so every page has one."""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse

from headwater.docs import ASSETS as DOCS_ASSETS
from headwater.errors import HeadwaterError
from headwater.web.security import AccessDenied, check_token
from headwater.web.views import pygments_css

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# the docs site's stylesheet and helpers that the UI shares, where the site has them
# (assets/); package files like /static/, so the Shield passes them through untouched
SHARED_ASSETS = ("/assets/shared.css", "/assets/shared.js")

router = APIRouter(include_in_schema=False)


def render(
    name: str, request: Request, title: str, status: int = 200, **values: str
) -> HTMLResponse:
    """Fill ``templates/<name>`` into ``base.html``; every value is HTML-escaped.

    With a token, a request that does not carry it (or the session cookie) gets the
    locked page instead: no project name, no node names, no suggestions.
    """
    web = request.app.state.web
    if web.token is not None:
        try:
            check_token({k.lower(): v for k, v in request.headers.items()}, web.token)
        except AccessDenied:
            return _locked()
    try:
        project = web.view.info(token_required=False)["name"]
    except HeadwaterError:
        project = web.view.root().name
    body = (TEMPLATES / name).read_text("utf-8")
    for key, value in values.items():
        body = body.replace("{{" + key + "}}", escape(value))
    page = (TEMPLATES / "base.html").read_text("utf-8")
    fill = {"title": f"{title} · {project}" if title else project, "project": project,
            "env": web.view.env, "page": name.removesuffix(".html"),
            "token": "yes" if web.token else "no"}
    for key, value in fill.items():
        page = page.replace("{{" + key + "}}", escape(value))
    return HTMLResponse(page.replace("{{body}}", body), status_code=status)


def _locked() -> HTMLResponse:
    page = (TEMPLATES / "base.html").read_text("utf-8")
    fill = {"title": "Headwater", "project": "Headwater", "env": "", "page": "locked",
            "token": "yes"}
    for key, value in fill.items():
        page = page.replace("{{" + key + "}}", escape(value))
    body = (TEMPLATES / "locked.html").read_text("utf-8")
    return HTMLResponse(page.replace("{{body}}", body), status_code=401)


@router.get("/", response_class=HTMLResponse)
def graph_page(request: Request) -> HTMLResponse:
    return render("graph.html", request, "pipeline")


@router.get("/nodes/{key}", response_class=HTMLResponse)
def node_page(request: Request, key: str) -> HTMLResponse:
    try:
        name = request.app.state.web.view.resolve(key)
    except HeadwaterError as exc:
        return render("missing.html", request, "not found", status=404, message=exc.render())
    return render("node.html", request, name, node=name)


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request) -> HTMLResponse:
    return render("runs.html", request, "runs", run="")


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str) -> HTMLResponse:
    return render("runs.html", request, f"run {run_id}", run=run_id)


@router.get("/assets/shared.css")
def shared_stylesheet() -> FileResponse:
    return FileResponse(DOCS_ASSETS / "shared.css", media_type="text/css")


@router.get("/assets/shared.js")
def shared_script() -> FileResponse:
    return FileResponse(DOCS_ASSETS / "shared.js", media_type="text/javascript")


@router.get("/assets/pygments.css")
def pygments_stylesheet() -> PlainTextResponse:
    return PlainTextResponse(pygments_css(), media_type="text/css",
                             headers={"Cache-Control": "max-age=3600"})
