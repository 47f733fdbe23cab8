"""``headwater serve``: a local web UI over the Python API.

Pages: the pipeline graph coloured by status, a page per node (code, columns,
column lineage, checks, run history, a preview of its rows), the runs with a
timeline of each, live progress of the current run, and buttons to start runs.
Every page is rendered from a JSON API described at ``/api/openapi.json``.

>>> from headwater import Project
>>> from headwater.web import create_app, serve
>>> app = create_app(Project("shop"))          # doctest: +SKIP  (an ASGI app)
>>> serve(Project("shop"), port=8580)          # doctest: +SKIP  (blocks)
>>> with Background(Project("shop")) as ui:     # doctest: +SKIP  (from a thread)
...     print(ui.url)

Needs ``pip install 'headwater[web]'`` (FastAPI and uvicorn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from headwater.web.security import TOKEN_ENV, ServeError, check_bind, is_loopback
from headwater.web.server import DEFAULT_PORT, Background, serve

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["DEFAULT_PORT", "TOKEN_ENV", "Background", "ServeError", "check_bind", "create_app",
           "is_loopback", "serve"]


def create_app(project: Any, **kwargs: Any) -> FastAPI:
    """The ASGI app for ``project`` (see :func:`headwater.web.app.create_app`)."""
    from headwater.web.app import create_app as make

    return make(project, **kwargs)
